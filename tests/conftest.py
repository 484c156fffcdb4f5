"""Shared fixtures: real slices of the shared FER-2013 file, and small synthetic files for bad input."""

from __future__ import annotations

import dataclasses
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


def built_once(tmp_path_factory, name: str, build):
    """`build(folder)` -> JSON-able, run once per test session even with pytest-xdist workers: the first
    worker builds under a file lock in the session's shared temp folder, the others wait and read the result."""
    import fcntl
    import json

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent   # shared by every worker of this session
    folder, record = root / name, root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            folder.mkdir(exist_ok=True)
            record.write_text(json.dumps(build(folder)))
        return json.loads(record.read_text())


def write_h264(frames, path: Path, fps: int = 15) -> Path:
    """H.264 in MP4, as phones and cameras record (OpenCV's wheels ship no H.264 encoder; PyAV's FFmpeg has x264)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].image.shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame.image, format="bgr24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def h264_videos(fer_val, tmp_path_factory) -> tuple[Path, Path]:
    """(clean, damaged): 30 composed frames of real faces as H.264, and a copy whose first keyframe is scribbled
    over (a bad sector, a torn copy): FFmpeg conceals the damage and OpenCV returns every frame, garbage included."""
    from edgefer.compose import compose_frames

    root = tmp_path_factory.mktemp("h264")
    clean = write_h264(compose_frames(fer_val.images, fer_val.labels, 30, 2, seed=3), root / "clean.mp4")
    data = bytearray(clean.read_bytes())   # the moov atom is at the end: bytes 2,000-12,000 are the first frame's
    for at in range(2000, 12000, 97):
        data[at] ^= 0x5A
    damaged = root / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    return clean, damaged


@pytest.fixture(scope="session")
def trained_model(fer_csv, tmp_path_factory):
    """A real mini-Xception trained briefly on 2,000 FER-2013 faces (well above chance)."""

    def build(project):
        from edgefer.train import config_from_recipe, train

        config = config_from_recipe("quick", data=str(fer_csv), limit=2000, epochs=2, project=str(project), name="m")
        return str(train(config, verbose=0, log=lambda *_: None).best_model)

    return Path(built_once(tmp_path_factory, "trained_model", build))


@pytest.fixture(scope="session")
def exported(trained_model, fer_csv, tmp_path_factory):
    """float32, int8, ONNX and ONNX int8 exports of `trained_model`, with their validation rows."""

    def build(out):
        import warnings

        from edgefer.convert.export import export_model

        scratch = out / "scratch"  # the system temp folder for this export: it must be left empty
        scratch.mkdir()
        system_temp, tempfile.tempdir = tempfile.tempdir, str(scratch)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rows, folder = export_model(trained_model, out, ["float32", "int8", "onnx", "onnx_int8"],
                                            str(fer_csv), calibration=100, limit=600, threshold=2.5,
                                            log=lambda *_: None)
        finally:
            tempfile.tempdir = system_temp
        assert any("calibrating int8 on 100 images" in str(w.message) for w in caught)
        return {"rows": [dataclasses.asdict(row) for row in rows], "folder": str(folder)}

    from edgefer.convert.export import ExportRow

    built = built_once(tmp_path_factory, "exported", build)
    return {row["format"]: ExportRow(**row) for row in built["rows"]}, Path(built["folder"])


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


# Test tiers (markers given here, by what a test uses, so no test can forget its tier):
#   slow: trains or exports a model; browser: Chromium; postgres: a PostgreSQL server; ray: a Ray instance;
#   jax: the JAX backend. The fast tier (device path, API, bad input on the shipped weights) is
#   `python -m pytest -n auto -m "not slow and not browser and not postgres and not ray and not jax"`.
SLOW_MODULES = {"test_training", "test_prune", "test_profiling", "test_sweep", "test_distillation", "test_averaging",
                "test_reparam", "test_sharpness", "test_export", "test_models", "test_distribute", "test_tta"}
SLOW_FIXTURES = {"trained_model", "exported"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        fixtures = set(getattr(item, "fixturenames", ()))
        if module in SLOW_MODULES or fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if "postgres_url" in fixtures:
            item.add_marker(pytest.mark.postgres)
        if "browser" in item.name:
            item.add_marker(pytest.mark.browser)
        if module == "test_bulk":
            item.add_marker(pytest.mark.ray)
        if "jax" in item.name or module == "test_distribute":
            item.add_marker(pytest.mark.jax)
