"""Device profiles: named settings for a board (threads, model, detector, resolution, providers).

Shipped profiles live inside the package (`edgefer/live/device_profiles/*.json`), so a normal
(non-editable) install finds them; any `.json` path works too. `apply_profile` merges a profile with the
options given on the command line in one place: an explicit option always wins.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

from edgefer.errors import EdgeferError
from edgefer.live.config import RunConfig
from edgefer.options import expected, specs, violates

PROFILE_FOLDER = Path(__file__).resolve().parent / "device_profiles"
PACKAGE = Path(__file__).resolve().parents[1]
DESCRIPTIVE = ("description", "runtime")   # documentation fields of a profile, not settings


def available_profiles() -> dict[str, Path]:
    return {path.stem: path for path in sorted(PROFILE_FOLDER.glob("*.json"))}


def load_profile(name_or_path: str) -> dict:
    """A profile by name (rpi4, rpi5, jetson) or by path: RunConfig fields (plus descriptive text)."""
    path = Path(name_or_path)
    if path.suffix.lower() != ".json":
        profiles = available_profiles()
        if name_or_path not in profiles:
            raise EdgeferError(f"--device {name_or_path!r}: unknown device profile; expected one of "
                             f"{', '.join(profiles)} or a .json path")
        path = profiles[name_or_path]
    if not path.is_file():
        raise FileNotFoundError(f"--device {path}: device profile not found")
    try:
        profile = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EdgeferError(f"--device {path}: not valid JSON ({error})") from None
    if not isinstance(profile, dict):
        raise EdgeferError(f"--device {path}: expected a JSON object of run settings")
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(profile) - fields - set(DESCRIPTIVE))
    if unknown:
        raise EdgeferError(f"--device {path}: unknown setting(s) {', '.join(unknown)}; expected some of "
                         f"{', '.join(sorted(fields))}")
    settings = {k: v for k, v in profile.items() if k not in DESCRIPTIVE}
    for key, value in settings.items():
        _check_setting(path, key, value)
    model = settings.get("model")
    if model and not Path(model).is_absolute():
        settings["model"] = str((PACKAGE / model).resolve())   # shipped models are relative to the package
    if settings.get("resolution") is not None:
        settings["resolution"] = tuple(settings["resolution"])
    return settings


def _check_setting(path: Path, key: str, value) -> None:
    """One line naming the profile, the setting and what was expected: a type, then the option's range."""
    hint = typing.get_type_hints(RunConfig)[key]
    allowed = [a for a in typing.get_args(hint)] or [hint]
    where = f"--device {path}: setting {key!r} is {json.dumps(value)}"
    if value is None:
        if type(None) not in allowed:
            raise EdgeferError(f"{where}; expected a value")
        return
    if key == "resolution":
        if not (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
            raise EdgeferError(f"{where}; expected [WIDTH, HEIGHT], two positive integers, e.g. [640, 480]")
        return
    if key == "providers":
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise EdgeferError(f"{where}; expected a list of ONNX Runtime provider names")
        return
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}
    wanted = next((t for t in (bool, int, float, str) if t in allowed), None)
    if wanted is not None and (not isinstance(value, kinds[wanted]) or (wanted is not bool and isinstance(value, bool))):
        name = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[wanted]
        raise EdgeferError(f"{where}; expected {name}")
    spec = specs(RunConfig).get(key, (None, None))[1]
    if spec is not None and violates(value, spec):
        raise EdgeferError(f"{where}; expected {expected(spec)}")


def apply_profile(config: RunConfig, profile: dict, explicit: set[str]) -> RunConfig:
    """`config` with the profile's settings, except the fields in `explicit` (given on the command line)."""
    return dataclasses.replace(config, **{k: v for k, v in profile.items() if k not in explicit})
