"""Frames composed from labelled faces pasted into larger images: ground truth for the live loop.

Used by tests and benchmarks to measure detection recall and end-to-end expression accuracy on frames
whose true boxes and labels are known.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class ComposedFrame:
    image: np.ndarray            # BGR uint8
    boxes: list[list[int]]       # x, y, w, h of each pasted face
    labels: list[int]


def background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth random colour background (low-frequency noise), so detectors see no face-like texture."""
    width, height = size
    small = rng.integers(40, 215, (height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def compose_frames(faces: np.ndarray, labels: np.ndarray, count: int, faces_per_frame: int = 2,
                   size: tuple[int, int] = (640, 480), face_px: tuple[int, int] = (110, 170),
                   seed: int = 0, border_face: bool = False) -> list[ComposedFrame]:
    """Paste `faces_per_frame` distinct faces (uint8 S x S gray), upscaled to face_px, without overlap.

    border_face=True puts the last face of each frame partly outside the image (cut by the edge).
    """
    return list(iter_composed_frames(faces, labels, count, faces_per_frame, size, face_px, seed, border_face))


def iter_composed_frames(faces, labels, count, faces_per_frame=2, size=(640, 480), face_px=(110, 170), seed=0,
                         border_face=False):
    """compose_frames one frame at a time (for long clips that should not sit in memory)."""
    rng = np.random.default_rng(seed)
    width, height = size
    next_face = 0
    for _ in range(count):
        canvas = background(size, rng)
        boxes, chosen = [], []
        slot_width = width // faces_per_frame
        for slot in range(faces_per_frame):
            index = next_face % len(faces)
            next_face += 1
            side = int(rng.integers(face_px[0], face_px[1] + 1))
            x = slot * slot_width + int(rng.integers(0, max(1, slot_width - side)))
            y = int(rng.integers(0, max(1, height - side)))
            if border_face and slot == faces_per_frame - 1:
                x = width - side * 2 // 3  # a third of the face is cut off by the right edge
            face = cv2.cvtColor(cv2.resize(faces[index], (side, side), interpolation=cv2.INTER_CUBIC),
                                cv2.COLOR_GRAY2BGR)
            visible = min(side, width - x)
            canvas[y:y + side, x:x + visible] = face[:, :visible]
            boxes.append([x, y, side, side])
            chosen.append(int(labels[index]))
        yield ComposedFrame(canvas, boxes, chosen)


def write_video(frames, path: str, fps: float = 15.0) -> str:
    """Write composed frames (a list or any iterable) as a video; MJPG for .avi, mp4v otherwise."""
    writer = None
    try:
        for frame in frames:
            if writer is None:
                height, width = frame.image.shape[:2]
                fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.lower().endswith(".avi") else "mp4v"))
                writer = cv2.VideoWriter(path, fourcc, fps, (width, height))
            writer.write(frame.image)
    finally:
        if writer is not None:
            writer.release()
    return path
