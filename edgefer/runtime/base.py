"""The classifier front every runtime backend shares: input checks, scaling, batching, test-time views."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgefer.errors import EdgeferError
from edgefer.runtime.info import ModelInfo


class Classifier:
    """Common front: input checks, scaling and batching; subclasses run one backend."""

    backend = "?"

    def __init__(self, path: Path, info: ModelInfo):
        self.path, self.info = path, info

    def predict(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        if faces.ndim == 4 and faces.shape[-1] == 1:
            faces = faces[..., 0]
        size = self.info.input_size
        if faces.ndim != 3 or faces.shape[1:] != (size, size):
            raise EdgeferError(f"expected faces of shape (N, {size}, {size}) uint8, got {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, len(self.info.class_names)), np.float32)
        return self._run(faces.astype(np.uint8, copy=False)[..., None])

    def predict_tta(self, faces: np.ndarray, shift: int = 0) -> np.ndarray:
        """Test-time augmentation: the mean prediction over the face and its mirror image, and with
        `shift` > 0 also over both moved `shift` pixels left, right, up and down (10 views)."""
        faces = np.asarray(faces)
        views = tta_views(faces[None] if faces.ndim == 2 else faces, shift)
        return np.mean([self.predict(view) for view in views], axis=0)

    def scaled(self, faces_u8: np.ndarray) -> np.ndarray:
        return faces_u8.astype(np.float32) * self.info.input_scale + self.info.input_offset

    def _run(self, faces_u8: np.ndarray) -> np.ndarray:  # (N, S, S, 1) uint8
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path}, backend={self.backend})"


def tta_views(faces: np.ndarray, shift: int = 0) -> list[np.ndarray]:
    """The views `predict_tta` averages over: (N, S, S[, 1]) faces, their mirror images and, for
    `shift` > 0, both translated by `shift` pixels in each of four directions with the border repeated."""
    if shift < 0:
        raise EdgeferError(f"TTA shift must be >= 0 pixels, got {shift}")
    mirrored = faces[:, :, ::-1]
    offsets = [(0, 0)] + ([(shift, 0), (-shift, 0), (0, shift), (0, -shift)] if shift else [])
    return [translate(view, dy, dx) for view in (faces, mirrored) for dy, dx in offsets]


def translate(faces: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move (N, H, W[, C]) images by (dy, dx) pixels, repeating the edge row/column into the gap."""
    if dy == 0 and dx == 0:
        return faces
    height, width = faces.shape[1:3]
    rows = np.clip(np.arange(height) - dy, 0, height - 1)
    cols = np.clip(np.arange(width) - dx, 0, width - 1)
    return faces[:, rows][:, :, cols]


def time_single_face(classifier: Classifier, repeats: int = 200) -> float:
    """Median milliseconds for one face (batch 1), after a warm-up."""
    face = np.full((1, classifier.info.input_size, classifier.info.input_size), 128, np.uint8)
    for _ in range(10):
        classifier.predict(face)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        classifier.predict(face)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)
