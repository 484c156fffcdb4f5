"""The input scaling every edgefer model is trained with: pixel / 127.5 - 1, so faces lie in [-1, 1].

A leaf: the data loaders, the training loop and every runtime backend share it.
"""

from __future__ import annotations

import numpy as np

UNIT_SCALE = 1 / 127.5   # x_model = pixel * UNIT_SCALE + UNIT_OFFSET
UNIT_OFFSET = -1.0


def scale_to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1], the input scaling every edgefer model uses."""
    return images.astype(np.float32) / 127.5 - 1.0
