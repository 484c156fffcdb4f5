"""Device profiles: named settings for a board (threads, model, detector, resolution, providers).

Shipped profiles live inside the package (`edgefer/live/device_profiles/*.json`), so a normal
(non-editable) install finds them; any `.json` path works too. `apply_profile` merges a profile with the
options given on the command line in one place: an explicit option always wins.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from edgefer.errors import EdgeferError
from edgefer.live.config import RunConfig

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
    model = profile.get("model")
    if model and not Path(model).is_absolute():
        profile["model"] = str((PACKAGE / model).resolve())   # shipped models are relative to the package
    if "resolution" in profile and profile["resolution"] is not None:
        profile["resolution"] = tuple(int(v) for v in profile["resolution"])
    return {k: v for k, v in profile.items() if k not in DESCRIPTIVE}


def apply_profile(config: RunConfig, profile: dict, explicit: set[str]) -> RunConfig:
    """`config` with the profile's settings, except the fields in `explicit` (given on the command line)."""
    return dataclasses.replace(config, **{k: v for k, v in profile.items() if k not in explicit})
