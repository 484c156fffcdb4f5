"""What a model needs to be used correctly, read from its sidecar `<model>.json`. A leaf result type."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from edgefer.errors import EdgeferError
from edgefer.labels import CLASS_NAMES
from edgefer.scaling import UNIT_OFFSET, UNIT_SCALE


@dataclass
class ModelInfo:
    """What a model needs to be used correctly; read from the sidecar `<model>.json` when present."""

    name: str = "mini_xception"
    version: str = ""
    class_names: tuple[str, ...] = CLASS_NAMES
    input_size: int = 48
    channels: int = 1
    input_scale: float = UNIT_SCALE   # x_model = pixel * scale + offset
    input_offset: float = UNIT_OFFSET
    extra: dict = field(default_factory=dict)

    @classmethod
    def for_model(cls, path: Path) -> "ModelInfo":
        sidecar = sidecar_path(path)
        if not sidecar.exists():
            return cls()
        try:
            values = json.loads(sidecar.read_text())
        except ValueError as error:   # a damaged sidecar names itself, in one line
            raise EdgeferError(f"{sidecar}: the model's sidecar is not valid JSON ({error}); expected the file "
                               "edgefer export wrote beside the model, or remove it to use the defaults") from None
        if not isinstance(values, dict):
            raise EdgeferError(f"{sidecar}: the model's sidecar holds {type(values).__name__}; expected a JSON object")
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values and k != "extra"}
        if "class_names" in known:
            known["class_names"] = tuple(known["class_names"])
        return cls(**known, extra={k: v for k, v in values.items() if k not in known})


def sidecar_path(model_path: str | os.PathLike) -> Path:
    path = Path(model_path)
    return path.with_name(path.name + ".json")
