"""Track ids across frames by box overlap, and per-track smoothing of the probabilities."""

from __future__ import annotations

import numpy as np

from edgefer.detect.types import Detection


def box_iou(a: list[int], b: list[int]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


class FaceTracks:
    """Gives each face a track id by IoU with the last frame's faces; smooths probabilities per track."""

    def __init__(self, smoothing: float, min_iou: float = 0.3, max_missed: int = 10):
        self.smoothing, self.min_iou, self.max_missed = smoothing, min_iou, max_missed
        self.tracks: dict[int, dict] = {}
        self.next_id = 0

    def update(self, detections: list[Detection], probabilities: np.ndarray) -> tuple[list[int], np.ndarray]:
        ids, smoothed = [], probabilities.copy()
        free = set(self.tracks)
        for k, detection in enumerate(detections):
            best = max(free, key=lambda t: box_iou(self.tracks[t]["box"], detection.box), default=None)
            if best is None or box_iou(self.tracks[best]["box"], detection.box) < self.min_iou:
                best, self.next_id = self.next_id, self.next_id + 1
                self.tracks[best] = {"box": detection.box, "p": probabilities[k], "missed": 0}
            else:
                free.discard(best)
                track = self.tracks[best]
                track["p"] = self.smoothing * track["p"] + (1 - self.smoothing) * probabilities[k]
                track["box"], track["missed"] = detection.box, 0
            smoothed[k] = self.tracks[best]["p"]
            ids.append(best)
        for lost in free:
            self.tracks[lost]["missed"] += 1
            if self.tracks[lost]["missed"] > self.max_missed:
                del self.tracks[lost]
        return ids, smoothed
