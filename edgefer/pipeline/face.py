"""The classified face: one typed result that the live loop, the browser view, bulk and the Python API all
read. A leaf (numpy only), like MediaPipe's result containers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Face:
    """A detected face with its expression. `box` is [x, y, w, h] in pixels of the frame; `probabilities`
    follows `class_names`; `track_id` is the face's id across frames (None for unrelated photos: 0, 1 ...)."""

    box: list[int]
    score: float
    probabilities: np.ndarray
    class_names: tuple[str, ...]
    landmarks: list[list[int]] | None = None
    track_id: int | None = None

    @property
    def expression(self) -> str:
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    def as_record(self) -> dict:
        """The JSON Lines / Server-Sent Events schema of a face (`edgefer run --json`)."""
        record = {"id": self.track_id, "box": [int(v) for v in self.box], "score": round(float(self.score), 4),
                  "emotion": self.expression,
                  "probabilities": {n: round(float(v), 4) for n, v in zip(self.class_names, self.probabilities)}}
        if self.landmarks is not None:
            record["landmarks"] = [[int(x), int(y)] for x, y in self.landmarks]
        return record

    def as_row(self, **context) -> dict:
        """A flat row (`edgefer bulk`'s Parquet schema): x, y, w, h, score, emotion, p_<class> ..., plus
        whatever `context` names (file, frame, timestamp_s, model, detector)."""
        x, y, w, h = (int(v) for v in self.box)
        return {**context, "x": x, "y": y, "w": w, "h": h, "score": round(float(self.score), 4),
                "emotion": self.expression,
                **{f"p_{n}": round(float(v), 4) for n, v in zip(self.class_names, self.probabilities)}}
