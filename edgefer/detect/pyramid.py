"""MTCNN's image pyramid, area-averaged, from one integral image.

OpenCV's INTER_AREA at a non-integer ratio walks the whole frame once per level (eight levels of a 640x480
frame at a 40-px minimum face: 10.0 of MTCNN's 21.8 ms on one core in profiles/benchmarks/detect_levers.md).
The same average is a box sum:
the integral image of a piecewise-constant image is bilinear inside each pixel, so a box with fractional
edges sums to four bilinearly interpolated integral values. One `cv2.integral` per frame, then per level a
gather of the corners and a few array operations (4.3 ms in the same record). The result is INTER_AREA's value before its
rounding to uint8 (differences <= 0.5 grey level), normalised for MTCNN and in RGB order.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgefer.errors import EdgeferError

OFFSET = np.float32(127.5 / 128.0)


class AreaPyramid:
    """Levels of (width, height) sizes for frames of one shape: `pyramid(bgr_u8)` -> list of float32 arrays
    (h, w, 3), RGB, (x - 127.5) / 128 of the area average of each output pixel's footprint."""

    int32_pixels = (2**31 - 1) // 255   # frames up to this size integrate in int32, larger ones in float64

    def __init__(self, height: int, width: int, sizes: list[tuple[int, int]]):
        self.shape = (height, width)
        stride = (width + 1) * 3
        self.levels = []
        for w, h in sizes:
            ys, xs = np.arange(h + 1) * (height / h), np.arange(w + 1) * (width / w)
            iy, ix = np.minimum(ys.astype(np.intp), height - 1), np.minimum(xs.astype(np.intp), width - 1)
            rows = np.concatenate([iy, iy + 1])              # each corner row and the next integer row
            cols = np.concatenate([ix, ix + 1])
            # flat indices of the integral image, channels taken in RGB order (BGR input)
            flat = rows[:, None, None] * stride + cols[None, :, None] * 3 + np.array([2, 1, 0])
            fy = (ys - iy).astype(np.float32)[:, None, None]
            fx = (xs - ix).astype(np.float32)[None, :, None]
            self.levels.append((h, w, flat, fy, fx, np.float32(h * w / (height * width) / 128.0)))

    def __call__(self, bgr: np.ndarray) -> list[np.ndarray]:
        if bgr.shape[:2] != self.shape:
            raise EdgeferError(f"frame of {bgr.shape[1]}x{bgr.shape[0]}; this pyramid is for "
                             f"{self.shape[1]}x{self.shape[0]}")
        # integers stay exact (int32 up to 8.4 megapixels, float64 beyond); differences of corner values are
        # taken in them, so float32 only ever holds sums over one row band (no cancellation)
        depth = cv2.CV_32S if bgr.shape[0] * bgr.shape[1] <= self.int32_pixels else cv2.CV_64F
        integral = cv2.integral(bgr, sdepth=depth).ravel()
        return [self._level(integral, *level) for level in self.levels]

    @staticmethod
    def _level(integral, h, w, flat, fy, fx, norm) -> np.ndarray:
        corners = integral.take(flat)                            # (2h + 2, 2w + 2, 3)
        left, right = corners[:, :w + 1], corners[:, w + 1:]     # at floor(x) and floor(x) + 1
        partial = (right - left).astype(np.float32) * fx          # the fractional column of each corner
        bands = np.diff(left, axis=1).astype(np.float32) + np.diff(partial, axis=1)  # sums left of x, per row
        top, below = bands[:h + 1], bands[h + 1:]
        at_y = top + (below - top) * fy                           # ... at the fractional corner rows
        return np.diff(at_y, axis=0) * norm - OFFSET
