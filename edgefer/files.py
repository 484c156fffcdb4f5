"""Atomic artifact writing and run directories: a killed job never leaves a half-written file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from edgefer.errors import EdgeferError


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
    """A JSON file's content; a corrupt file raises ValueError naming it (one line)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EdgeferError(f"{path}: not valid JSON ({error}); expected a file edgefer wrote") from None


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def check_run_name(name: str) -> str:
    """A run name is one plain folder name: never a path that leaves --project."""
    text = str(name)
    if not text.strip() or text.strip() in (".", "..") or "/" in text or "\\" in text or text != text.strip() \
            or Path(text).is_absolute():
        raise EdgeferError(f"--name {text!r}: expected a plain folder name (letters, digits, - _ .), not a path")
    return text


def check_writable_folder(folder: str | os.PathLike, option: str = "--project") -> Path:
    """Fail early, with the option's name, where a folder cannot be made or written to."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise NotADirectoryError(f"{option} {folder}: {existing} is a file; expected a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {folder}: {existing} is not writable; expected a folder you can write to")
    return folder


def new_run_dir(project: str | os.PathLike, name: str, exist_ok: bool = False) -> Path:
    """runs/<task>/<name>, or <name>2, <name>3 ... when taken (Ultralytics' convention). Never reuses a folder
    that holds anything, never leaves `project`."""
    check_run_name(name)
    check_writable_folder(project)
    base = Path(project) / name
    candidate, index = base, 1
    while candidate.exists() and not exist_ok and (not candidate.is_dir() or any(candidate.iterdir())):
        index += 1
        candidate = base.with_name(f"{name}{index}")
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate


def model_label(model: str | os.PathLike) -> str:
    """A readable name for a model file, for the folders made from it: a training run's weights are named
    after the run (runs/train/m3/weights/model.keras -> m3_model), any other file after its stem."""
    model = Path(model)
    if model.parent.name == "weights" and (model.parent.parent / "args.json").is_file():
        return f"{model.parent.parent.name}_{model.stem}"
    return model.stem
