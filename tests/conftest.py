"""Shared fixtures: real slices of the shared FER-2013 file, and small synthetic files for bad input."""

from __future__ import annotations

import os
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
