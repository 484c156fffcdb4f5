"""What `edgefer.Analyzer` returns for one image or frame: its faces, and ways to look at them. A leaf of the
pipeline (the faces, the overlay), like Ultralytics' Results and MediaPipe's result containers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgefer.errors import EdgeferError
from edgefer.files import atomic_path
from edgefer.pipeline.draw import draw_faces
from edgefer.pipeline.face import Face


@dataclass
class Result:
    """The faces of one image (an empty list when it has none). `image` is the BGR frame they were found in;
    `path` the file it came from (photos), `frame` and `timestamp` its place in a video or camera stream."""

    faces: list[Face]
    image: np.ndarray = field(repr=False)
    path: str | None = None
    frame: int = 0
    timestamp: float | None = None

    def __len__(self) -> int:
        return len(self.faces)

    def __iter__(self):
        return iter(self.faces)

    def plot(self) -> np.ndarray:
        """A copy of the image with each face's box, landmarks, track id and expression drawn (BGR uint8)."""
        return draw_faces(self.image, self.faces)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write `plot()` to an image file (.jpg, .png ...), atomically; an existing file is kept unless
        `overwrite`."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise EdgeferError(f"{path}: exists (pass overwrite=True to replace it)")
        ok, encoded = cv2.imencode(path.suffix or ".jpg", self.plot())
        if not ok:
            raise EdgeferError(f"{path}: OpenCV cannot write {path.suffix!r} images (expected .jpg or .png)")
        with atomic_path(path) as temp:
            Path(temp).write_bytes(encoded.tobytes())
        return path

    def as_record(self) -> dict:
        """The `edgefer run --json` schema: frame, timestamp, file (photos), faces."""
        record = {"frame": self.frame, "timestamp": None if self.timestamp is None else round(self.timestamp, 4)}
        if self.path:
            record["file"] = self.path
        record["faces"] = [face.as_record() for face in self.faces]
        return record

    def to_json(self) -> str:
        return json.dumps(self.as_record())
