"""Device profiles (devices/<board>/<name>.json): threads, model format, detector settings, providers."""

from __future__ import annotations

import json
from pathlib import Path

def _profile_folders() -> list[Path]:
    """The repository's devices/ (editable install), then ./devices (the service's working directory)."""
    return [Path(__file__).resolve().parents[1] / "devices", Path.cwd() / "devices"]


def available_profiles() -> dict[str, Path]:
    profiles: dict[str, Path] = {}
    for folder in _profile_folders():
        for path in sorted(folder.glob("*/*.json")) if folder.is_dir() else []:
            profiles.setdefault(path.stem, path)
    return profiles


def load_profile(name_or_path: str) -> dict:
    """A profile by name (rpi4, jetson) or by path; values are RunConfig fields plus `providers`."""
    path = Path(name_or_path)
    if not path.suffix:
        profiles = available_profiles()
        if name_or_path not in profiles:
            raise ValueError(f"unknown device profile {name_or_path!r}; expected one of "
                             f"{', '.join(profiles) or 'none found'} or a .json path")
        path = profiles[name_or_path]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: device profile not found")
    try:
        profile = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    model = profile.get("model")
    if model and not Path(model).is_absolute():
        profile["model"] = str((Path(__file__).resolve().parent / model).resolve())
    return profile
