"""Each option declared once: the command line's defaults, ranges and help come from the config fields
(edgefer.options), so `edgefer run -h` / `edgefer bulk -h` and the configs can never disagree."""

from __future__ import annotations

import dataclasses

import pytest
import typer.main
from typer.testing import CliRunner

from convert.config import ExportConfig
from edgefer.bulk.config import BulkConfig
from edgefer.cli import app
from edgefer.detect.types import DEFAULT_DETECTOR, MIN_FACE_SIZE
from edgefer.live.config import RunConfig
from edgefer.options import default_of, flag, specs
from edgefer.pipeline.config import PipelineOptions

COMMAND = typer.main.get_command(app)


@pytest.mark.parametrize("name, config", [("run", RunConfig), ("bulk", BulkConfig), ("export", ExportConfig)])
def test_the_command_line_reads_the_configs_declarations(name, config):
    params = {p.name: p for p in COMMAND.commands[name].params}
    declared = {k: v for k, v in specs(config).items() if v[1].cli}
    assert set(declared) <= set(params)
    for key, (field, spec) in declared.items():
        param = params[key]
        assert flag(key, spec) in param.opts, key
        default = default_of(field)
        assert param.default == (None if default is dataclasses.MISSING else default) or param.required, key
        assert param.help.startswith(spec.help), key
        assert (getattr(param, "min", None), getattr(param, "max", None)) == (spec.min, spec.max), key


@pytest.mark.parametrize("name", ["run", "bulk"])
def test_help_shows_the_one_default_of_each_shared_option(name):
    text = " ".join(CliRunner().invoke(app, [name, "-h"]).output.split())
    assert f"[default: {MIN_FACE_SIZE}; 12<=x<=4096]" in text
    assert f"[default: {DEFAULT_DETECTOR}]" in text


def test_run_and_bulk_share_the_pipeline_declarations():
    shared = specs(PipelineOptions)
    for config in (RunConfig, BulkConfig):
        assert all(specs(config)[k][1] is spec for k, (_, spec) in shared.items())
