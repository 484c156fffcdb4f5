"""Image helpers between a detector and the classifier: grayscale conversion and square face crops."""

from __future__ import annotations

import cv2
import numpy as np

from edgefer.detect.types import Detection


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def square_around(box, margin: float = 0.0) -> tuple[int, int, int]:
    """(x0, y0, side) of the square centred on an [x, y, w, h] box, its longer side enlarged by `margin`."""
    x, y, w, h = box
    side = max(int(round(max(w, h) * (1 + margin))), 1)
    return int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2)), side


def crop_face(gray: np.ndarray, detection: Detection, size: int = 48, margin: float = 0.0) -> np.ndarray:
    """Square crop centred on the box (enlarged by `margin`), edge-replicated where it leaves the image."""
    x0, y0, side = square_around(detection.box, margin)
    height, width = gray.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - width, y0 + side - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    crop = gray[y0:y0 + side, x0:x0 + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
