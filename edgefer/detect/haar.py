"""OpenCV's Viola-Jones frontal-face cascade (the paper's comparison detector), shipped inside
opencv-python(-headless) 4.x; OpenCV 5 wheels ship no cascades."""

from __future__ import annotations

import cv2
import numpy as np

from edgefer.detect.crop import to_gray
from edgefer.detect.types import MIN_FACE_SIZE, Detection


class HaarDetector:
    """OpenCV's frontal-face Haar cascade."""

    name = "haar"

    def __init__(self, min_face_size: int = MIN_FACE_SIZE, scale_factor: float = 1.1, min_neighbors: int = 5, threads=None,
                 equalize: bool = False):
        """`equalize`: histogram-equalise first. Off by default: on the hard-scene benchmark it cost recall
        (0.341 with, 0.515 without; profiles/benchmarks/detect_hard.md), which is why the `fer` package,
        with the same cascade and no equalisation, found more faces than edgefer did."""
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV's Haar cascade is missing ({path}); install opencv-python-headless<5")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_face_size
        self.threads, self.equalize = threads, equalize

    def _detect_multi_scale(self, gray):
        return self.cascade.detectMultiScale3(gray, self.scale_factor, self.min_neighbors,
                                              minSize=(self.min_size, self.min_size), outputRejectLevels=True)

    def detect(self, image: np.ndarray) -> list[Detection]:
        gray = cv2.equalizeHist(to_gray(image)) if self.equalize else to_gray(image)
        if self.threads:   # OpenCV's thread pool is process-wide: honour --threads for this call only
            previous = cv2.getNumThreads()
            cv2.setNumThreads(int(self.threads))
            try:
                boxes, _, weights = self._detect_multi_scale(gray)
            finally:
                cv2.setNumThreads(previous)
        else:
            boxes, _, weights = self._detect_multi_scale(gray)
        return [Detection(int(x), int(y), int(w), int(h), float(s)) for (x, y, w, h), s
                in zip(boxes, np.ravel(weights) if len(boxes) else [])]
