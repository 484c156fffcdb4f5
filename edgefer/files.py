"""Atomic artifact writing and run directories: a killed job never leaves a half-written file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path` (same suffix); move it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(handle)
    os.unlink(temp)  # writers such as keras.Model.save want to create the file themselves
    try:
        yield Path(temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, data) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def new_run_dir(project: str | os.PathLike, name: str, exist_ok: bool = False) -> Path:
    """runs/<task>/<name>, or <name>2, <name>3 ... when taken (Ultralytics' convention)."""
    base = Path(project) / name
    candidate, index = base, 1
    while candidate.exists() and not exist_ok and any(candidate.iterdir()):
        index += 1
        candidate = base.with_name(f"{name}{index}")
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate
