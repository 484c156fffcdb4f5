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


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A real PostgreSQL server from Debian's package: initdb in a temp dir, started on a free local port,
    stopped at the end. .ci/run installs the package; elsewhere the test is skipped when it is missing."""
    import glob
    import shutil
    import socket
    import subprocess

    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's postgresql (see .ci/run)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    bin_dir = Path(binaries[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="edgefer-pg-"))   # in /tmp itself: the postgres user must reach it
    data = folder / "data"
    as_user = []
    if os.geteuid() == 0:   # initdb refuses root: run the server as Debian's postgres user
        shutil.chown(folder, "postgres", "postgres")
        folder.chmod(0o700)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = lambda *args: subprocess.run([*as_user, *map(str, args)], check=True, capture_output=True, timeout=120)
    run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(bin_dir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-o",
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=50", "start")
    try:
        run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "edgefer")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/edgefer"
    finally:
        run(bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
