"""Detectors by name: `make_detector("mtcnn" | "haar", **options)`."""

from __future__ import annotations

from edgefer.detect.haar import HaarDetector
from edgefer.detect.mtcnn import MTCNNDetector

DETECTORS = {"mtcnn": MTCNNDetector, "haar": HaarDetector}


def make_detector(name: str = "mtcnn", **options):
    """'mtcnn' (LiteRT, the paper's detector) or 'haar' (OpenCV, the paper's comparison)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; expected one of {', '.join(DETECTORS)}")
    return DETECTORS[name](**options)
