"""What `pip install edgefer` would get: the wheel and sdist that PyPA's `build` makes from a copy of the
checkout, the wheel installed on its own in a fresh virtual environment, and the demo run from it."""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_installs_alone_and_runs_the_demo(tmp_path):
    pytest.importorskip("build")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    source = tmp_path / "src"   # a copy: building writes build/ and *.egg-info, never into the checkout
    for name in tracked.stdout.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check", "--sdist", "--wheel", "--outdir",
                            str(dist), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel, sdist = next(dist.glob("edgefer-*.whl")), next(dist.glob("edgefer-*.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"edgefer"}
    assert not any(n.startswith("convert/") for n in names)   # no top-level package named convert
    for shipped in ("edgefer/convert/export.py", "edgefer/weights/mini_xception_fer2013_int8.tflite",
                    "edgefer/live/web/index.html", "edgefer/live/device_profiles/rpi4.json", "edgefer/assets/astronaut.jpg"):
        assert shipped in names, shipped
    members = tarfile.open(sdist).getnames()
    assert any(m.endswith("/convert/export.py") for m in members) and any(m.endswith("/pyproject.toml") for m in members)

    venv = tmp_path / "venv"   # the wheel alone; its dependencies come from this interpreter's site-packages
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    # when this interpreter is itself a virtual environment (the README's test command), the dependencies live
    # in its site-packages, which a venv made from it does not see: name them (as paths: their .pth files, this
    # checkout's editable install among them, stay unprocessed, so `edgefer` is the wheel's)
    inner = next(venv.glob("lib/python*/site-packages"))
    (inner / "outer_site_packages.pth").write_text("".join(f"{path}\n" for path in site.getsitepackages()))
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    where = subprocess.run([str(python), "-c", "import importlib.util, edgefer, edgefer.convert.config; "
                            "print(edgefer.__file__); print(importlib.util.find_spec('convert'))"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    assert where.stdout.splitlines() == [str(next(venv.glob("lib/python*/site-packages/edgefer/__init__.py"))), "None"]
    demo = subprocess.run([str(venv / "bin" / "edgefer"), "run", "--source", "demo", "--no-show", "-q", "--json", "-"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr[-2000:]
    record = json.loads(demo.stdout.splitlines()[0])
    assert record["faces"] and record["faces"][0]["emotion"]
