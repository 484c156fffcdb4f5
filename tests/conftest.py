"""Shared fixtures: real slices of the shared FER-2013 file, and small synthetic files for bad input."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
FER_CSV = Path(os.environ.get("EDGEFER_FER_CSV", REPO.parent / "shared/data/fer2013_train_publictest.csv.gz"))


@pytest.fixture(scope="session")
def fer_csv() -> Path:
    if not FER_CSV.exists():
        pytest.skip(f"shared FER-2013 file not found at {FER_CSV} (set EDGEFER_FER_CSV)")
    return FER_CSV


@pytest.fixture(scope="session")
def fer_train(fer_csv):
    from edgefer.data import read_fer_csv

    return read_fer_csv(fer_csv, "Training", limit=4000)


@pytest.fixture(scope="session")
def fer_val(fer_csv):
    from edgefer.data import read_fer_csv

    return read_fer_csv(fer_csv, "PublicTest", limit=800)


def fer_row(label: int, pixels=None, usage: str = "Training", seed: int = 0) -> str:
    if pixels is None:
        pixels = np.random.default_rng(seed).integers(0, 256, 48 * 48)
    text = pixels if isinstance(pixels, str) else " ".join(str(int(p)) for p in pixels)
    return f'{label},"{text}",{usage}' if "," in text else f"{label},{text},{usage}"


@pytest.fixture
def write_csv(tmp_path):
    """write_csv(rows, header=...) -> path of a small CSV in tmp_path."""

    def write(rows, header="emotion,pixels,Usage", name="fer.csv"):
        path = tmp_path / name
        path.write_text(header + "\n" + "\n".join(rows) + "\n")
        return path

    return write


@pytest.fixture(scope="session")
def trained_model(fer_csv, tmp_path_factory):
    """A real mini-Xception trained briefly on 2,000 FER-2013 faces (well above chance)."""
    from edgefer.train import config_from_recipe, train

    project = tmp_path_factory.mktemp("runs")
    config = config_from_recipe("quick", data=str(fer_csv), limit=2000, epochs=2, project=str(project), name="m")
    return train(config, verbose=0, log=lambda *_: None).best_model


@pytest.fixture(scope="session")
def exported(trained_model, fer_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    from convert.export import export_model

    scratch = out / "scratch"  # the system temp folder for this export: it must be left empty
    scratch.mkdir()
    system_temp, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        with pytest.warns(UserWarning, match="calibrating int8 on 100 images"):
            rows, folder = export_model(trained_model, out, ["float32", "int8", "onnx", "onnx_int8"], str(fer_csv),
                                        calibration=100, limit=600, threshold=2.5, log=lambda *_: None)
    finally:
        tempfile.tempdir = system_temp
    return {row.format: row for row in rows}, folder


@pytest.fixture(scope="session")
def int8_model(exported) -> str:
    return exported[0]["int8"].file
