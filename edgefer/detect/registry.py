"""Detectors by name: `make_detector("mtcnn" | "haar", **options)`."""

from __future__ import annotations

import functools

from edgefer.detect.blazeface import BlazeFaceDetector
from edgefer.detect.haar import HaarDetector
from edgefer.detect.mtcnn import MTCNNDetector
from edgefer.detect.types import DETECTOR_NAMES

DETECTORS = {
    "mtcnn": MTCNNDetector,                                                   # the paper's detector (default)
    "blazeface": functools.partial(BlazeFaceDetector, variant="short"),       # fast, faces near the camera
    "blazeface_full": functools.partial(BlazeFaceDetector, variant="full"),   # smaller faces farther away
    "haar": HaarDetector,                                                     # the paper's comparison
}
assert tuple(DETECTORS) == DETECTOR_NAMES


def make_detector(name: str = "mtcnn", **options):
    """A detector by name: mtcnn, blazeface, blazeface_full (all LiteRT) or haar (OpenCV)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; expected one of {', '.join(DETECTORS)}")
    return DETECTORS[name](**options)
