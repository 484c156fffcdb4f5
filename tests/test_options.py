"""Each option declared once: the command line's defaults, ranges and help come from the config fields
(edgefer.options), so `edgefer run -h` / `edgefer bulk -h` and the configs can never disagree."""

from __future__ import annotations

import dataclasses

import pytest
import typer.main
from typer.testing import CliRunner

from edgefer.convert.config import ExportConfig
from edgefer.bulk.config import BulkConfig
from edgefer.cli import app
from edgefer.detect.types import DEFAULT_DETECTOR, MIN_FACE_SIZE
from edgefer.evaluation import EvaluateConfig
from edgefer.live.config import RunConfig
from edgefer.profile.run import ProfileConfig
from edgefer.prune.config import PruneConfig
from edgefer.sweep import SweepConfig
from edgefer.train.config import TrainConfig
from edgefer.train.pipeline import AugmentConfig
from edgefer.options import default_of, flag, specs
from edgefer.pipeline.config import PipelineOptions

COMMAND = typer.main.get_command(app)


@pytest.mark.parametrize("name, config", [
    ("run", RunConfig), ("bulk", BulkConfig), ("export", ExportConfig), ("train", TrainConfig),
    ("train", AugmentConfig), ("evaluate", EvaluateConfig), ("prune", PruneConfig), ("profile", ProfileConfig),
    ("sweep", SweepConfig)])
def test_the_command_line_reads_the_configs_declarations(name, config):
    params = {p.name: p for p in COMMAND.commands[name].params}
    declared = {k: v for k, v in specs(config).items() if v[1].cli}
    assert set(declared) <= set(params)
    for key, (field, spec) in declared.items():
        param = params[key]
        assert flag(key, spec) in param.opts, key
        default = default_of(field)
        default = None if default is dataclasses.MISSING or default == [] else default
        assert param.default == default or param.required, key
        assert param.help.startswith(spec.help), key
        typer_range = (None, None) if spec.expected else (   # check(config) explains these, Typer cannot
            None if spec.min_open else spec.min, None if spec.max_open else spec.max)
        assert (getattr(param, "min", None), getattr(param, "max", None)) == typer_range, key


@pytest.mark.parametrize("name", ["run", "bulk"])
def test_help_shows_the_one_default_of_each_shared_option(name):
    text = " ".join(CliRunner().invoke(app, [name, "-h"]).output.split())
    assert f"[default: {MIN_FACE_SIZE}; 12<=x<=4096]" in text
    assert f"[default: {DEFAULT_DETECTOR}]" in text


def test_run_and_bulk_share_the_pipeline_declarations():
    shared = specs(PipelineOptions)
    for config in (RunConfig, BulkConfig):
        assert all(specs(config)[k][1] is spec for k, (_, spec) in shared.items())


def test_every_option_of_the_training_commands_is_a_config_field():
    """No command declares an option of its own beside its configs, but the few that belong to the
    command line alone (a run to resume, a search space to parse, quietness)."""
    own = {"train": {"no_augment", "resume", "quiet"}, "sweep": {"space", "space_file"}, "evaluate": {"model"},
           "prune": {"model"}, "profile": set()}
    configs = {"train": (TrainConfig, AugmentConfig), "sweep": (SweepConfig, TrainConfig),
               "evaluate": (EvaluateConfig,), "prune": (PruneConfig,), "profile": (ProfileConfig,)}
    for name, classes in configs.items():
        declared = set().union(*(specs(c) for c in classes))
        params = {p.name for p in COMMAND.commands[name].params}
        assert params - declared - {"help"} == own[name], name


def test_train_help_shows_what_a_recipe_sets():
    text = " ".join(CliRunner().invoke(app, ["train", "-h"]).output.split())
    assert "Epochs. [default: (the recipe's); x>=1]" in text
    assert "--flip / --no-flip" in text and "--rotation" in text
