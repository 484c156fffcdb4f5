"""The face detector's result type and the protocol every detector follows. A leaf, like MediaPipe's result
containers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

# every detector make_detector knows (edgefer.detect.registry builds exactly these); configs validate against it
DETECTOR_NAMES = ("mtcnn", "blazeface", "blazeface_full", "haar", "yunet")
# the one default smallest face (pixels) of every detector, `edgefer run` and `edgefer bulk`: a face across a
# room at 640x480 (a 20-pixel face is too small for a 48-pixel classifier input to say much)
MIN_FACE_SIZE = 40
# the default detector, chosen on real photographs (profiles/benchmarks/realfaces.md): YuNet finds more of
# WIDER FACE's faces than MTCNN (recall 0.833 vs 0.810 at IoU 0.5) in a fifth of MTCNN's time
DEFAULT_DETECTOR = "yunet"


@dataclass
class Detection:
    """A face box in pixels (x, y: top-left corner) with the detector's score and, where the detector gives
    them, landmarks as [x, y] pixel pairs (MTCNN and YuNet: eyes, nose, mouth corners; BlazeFace: six)."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: list[list[int]] | None = None

    @property
    def box(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@runtime_checkable
class Detector(Protocol):
    """What the face pipeline needs of a detector: BGR (or grey, or BGRA) uint8 image in, faces out."""

    def detect(self, image: np.ndarray) -> list[Detection]: ...
