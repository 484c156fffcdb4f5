"""The overlay: each face's box and its expression with its probability (and track id when tracked)."""

from __future__ import annotations

import cv2
import numpy as np

from edgefer.pipeline.face import Face


def draw_faces(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for face in faces:
        x, y, w, h = face.box
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 200, 255), thickness)
        for lx, ly in face.landmarks or []:
            cv2.circle(canvas, (int(lx), int(ly)), thickness + 1, (0, 200, 255), -1)
        track = "" if face.track_id is None else f"#{face.track_id} "
        label = f"{track}{face.expression} {face.confidence:.2f}"
        scale = 0.45 * thickness
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(y - th - 6, 0)
        left = max(0, min(x, canvas.shape[1] - tw - 4))   # the whole label stays inside the frame
        cv2.rectangle(canvas, (left, top), (left + tw + 4, top + th + 6), (0, 200, 255), -1)
        cv2.putText(canvas, label, (left + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness)
    return canvas
