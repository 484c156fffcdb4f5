"""Face detectors behind one interface, and face cropping for the classifier.

`mtcnn` runs the MTCNN networks on LiteRT (edgefer.mtcnn_lite); `haar` is OpenCV's Viola-Jones cascade
(the paper's comparison detector), shipped inside opencv-python(-headless) 4.x. No TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Detection:
    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def box(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class HaarDetector:
    """OpenCV's frontal-face Haar cascade."""

    name = "haar"

    def __init__(self, min_face_size: int = 30, scale_factor: float = 1.1, min_neighbors: int = 5, threads=None):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV's Haar cascade is missing ({path}); install opencv-python-headless<5")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_face_size

    def detect(self, image: np.ndarray) -> list[Detection]:
        gray = cv2.equalizeHist(to_gray(image))
        boxes, _, weights = self.cascade.detectMultiScale3(
            gray, self.scale_factor, self.min_neighbors, minSize=(self.min_size, self.min_size),
            outputRejectLevels=True,
        )
        return [Detection(int(x), int(y), int(w), int(h), float(s)) for (x, y, w, h), s
                in zip(boxes, np.ravel(weights) if len(boxes) else [])]


def _mtcnn(**options):
    from edgefer.mtcnn_lite import MTCNNDetector

    return MTCNNDetector(**options)


DETECTORS = {"mtcnn": _mtcnn, "haar": HaarDetector}


def make_detector(name: str = "mtcnn", **options):
    """'mtcnn' (LiteRT, the paper's detector) or 'haar' (OpenCV, the paper's comparison)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; expected one of {', '.join(DETECTORS)}")
    return DETECTORS[name](**options)


def crop_face(gray: np.ndarray, detection: Detection, size: int = 48, margin: float = 0.0) -> np.ndarray:
    """Square crop centred on the box (enlarged by `margin`), edge-replicated where it leaves the image."""
    side = int(round(max(detection.w, detection.h) * (1 + margin)))
    side = max(side, 1)
    cx, cy = detection.x + detection.w / 2, detection.y + detection.h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    height, width = gray.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - width, y0 + side - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    crop = gray[y0:y0 + side, x0:x0 + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
