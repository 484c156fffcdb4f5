"""The face detector's result type. A leaf, like MediaPipe's result containers."""

from __future__ import annotations

from dataclasses import dataclass

# every detector make_detector knows (edgefer.detect.registry builds exactly these); configs validate against it
DETECTOR_NAMES = ("mtcnn", "blazeface", "blazeface_full", "haar")


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
