"""YuNet (libfacedetection) through OpenCV's own `cv2.FaceDetectorYN`: a small anchor-free face detector
with five landmarks, run by the OpenCV a device already has (nothing else to install).

The ONNX file ships in edgefer/weights with its licence (YUNET_LICENSE.txt; `python -m edgefer.convert.yunet_onnx`
copies and checks it). The score threshold default is chosen on real photographs
(profiles/benchmarks/realfaces.md), not OpenCV demo's 0.9, which misses most faces of a room-sized view.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgefer.detect.types import MIN_FACE_SIZE, Detection
from edgefer.errors import OptionError

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
MODEL_FILE = "yunet_s_640_640.onnx"
SMALLEST_FACE = 20   # input pixels: a frame is shrunk so that min_face_size becomes this (never enlarged)


class YuNetDetector:
    """detect(BGR, BGRA or grey uint8 image) -> detections with five landmarks (eyes, nose, mouth corners)."""

    name = "yunet"

    def __init__(self, min_face_size: int = MIN_FACE_SIZE, threads: int | None = 1, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3, top_k: int = 500, downscale: bool = True, weights: Path = WEIGHTS):
        """`downscale`: shrink a frame so that `min_face_size` becomes SMALLEST_FACE pixels (never enlarge): a
        40-pixel minimum runs on a quarter of the pixels. On the real photos, YuNet's recall of 20-40 px faces
        is 0.78 at full size and 0.43 at half size, hence 20 (profiles/benchmarks/realfaces.md)."""
        if not 0 < score_threshold < 1:
            raise OptionError(f"--score-threshold {score_threshold}: expected a probability between 0 and 1")
        if not 0 < nms_threshold < 1:
            raise OptionError(f"--nms-threshold {nms_threshold}: expected an IoU between 0 and 1")
        path = Path(weights) / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: YuNet model missing (run: python -m edgefer.convert.yunet_onnx)")
        self.min_face_size, self.threads, self.downscale = int(min_face_size), threads, downscale
        self.score_threshold, self.nms_threshold = float(score_threshold), float(nms_threshold)
        self.model = cv2.FaceDetectorYN.create(str(path), "", (320, 320), self.score_threshold,
                                               self.nms_threshold, int(top_k))
        self.size = (320, 320)

    def scale_for(self, width: int, height: int) -> float:
        return min(1.0, SMALLEST_FACE / max(self.min_face_size, 1)) if self.downscale else 1.0

    def detect(self, image: np.ndarray) -> list[Detection]:
        if image.ndim == 2:
            bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            bgr = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        else:
            bgr = image
        height, width = bgr.shape[:2]
        scale = self.scale_for(width, height)
        if scale < 1.0:
            bgr = cv2.resize(bgr, (max(1, round(width * scale)), max(1, round(height * scale))),
                             interpolation=cv2.INTER_AREA)
        size = (bgr.shape[1], bgr.shape[0])
        if size != self.size:
            self.model.setInputSize(size)
            self.size = size
        if self.threads:   # OpenCV's thread pool is process-wide: honour --threads for this call only
            previous = cv2.getNumThreads()
            cv2.setNumThreads(int(self.threads))
            try:
                _, faces = self.model.detect(np.ascontiguousarray(bgr))
            finally:
                cv2.setNumThreads(previous)
        else:
            _, faces = self.model.detect(np.ascontiguousarray(bgr))
        if faces is None:
            return []
        found = []
        sx, sy = width / size[0], height / size[1]
        for row in faces:
            x1, y1 = max(0.0, row[0] * sx), max(0.0, row[1] * sy)
            x2, y2 = min(float(width), (row[0] + row[2]) * sx), min(float(height), (row[1] + row[3]) * sy)
            w, h = x2 - x1, y2 - y1
            if max(w, h) < self.min_face_size or w <= 0 or h <= 0:
                continue
            landmarks = [[int(round(row[4 + 2 * k] * sx)), int(round(row[5 + 2 * k] * sy))] for k in range(5)]
            found.append(Detection(int(round(x1)), int(round(y1)), int(round(w)), int(round(h)), float(row[14]),
                                   landmarks))
        return found
