"""Detectors by name: `make_detector("mtcnn" | "blazeface" | "blazeface_full" | "haar" | "yunet", **options)`."""

from __future__ import annotations

import functools

from edgefer.detect.blazeface import BlazeFaceDetector
from edgefer.detect.haar import HaarDetector
from edgefer.detect.mtcnn import MTCNNDetector
from edgefer.detect.types import DEFAULT_DETECTOR, DETECTOR_NAMES, MIN_FACE_SIZE
from edgefer.detect.yunet import YuNetDetector
from edgefer.errors import OptionError

DETECTORS = {
    "mtcnn": MTCNNDetector,                                                   # the paper's detector
    "blazeface": functools.partial(BlazeFaceDetector, variant="short"),       # fast, faces near the camera
    "blazeface_full": functools.partial(BlazeFaceDetector, variant="full"),   # smaller faces farther away
    "haar": HaarDetector,                                                     # the paper's comparison
    "yunet": YuNetDetector,                                                   # OpenCV's YuNet: real photos
}
assert tuple(DETECTORS) == DETECTOR_NAMES
THRESHOLDED = ("blazeface", "blazeface_full", "yunet")   # the detectors with a score and an NMS threshold


def make_detector(name: str = DEFAULT_DETECTOR, min_face_size: int = MIN_FACE_SIZE, threads: int | None = 1,
                  score_threshold: float | None = None, nms_threshold: float | None = None, **options):
    """A detector by name: mtcnn, blazeface, blazeface_full (all LiteRT), haar or yunet (OpenCV). Thresholds
    left None keep the detector's own default; given to a detector without them, they are refused."""
    if name not in DETECTORS:
        raise OptionError(f"--detector {name}: expected one of {', '.join(DETECTORS)}")
    for option, value in (("--score-threshold", score_threshold), ("--nms-threshold", nms_threshold)):
        if value is not None:
            if name not in THRESHOLDED:
                raise OptionError(f"{option} {value}: the {name} detector has none (expected only with "
                                  f"{', '.join(THRESHOLDED)})")
            options[option[2:].replace("-", "_")] = value
    return DETECTORS[name](min_face_size=min_face_size, threads=threads, **options)
