"""What `edgefer bulk` is told (BulkConfig) and the schema of what it writes. A leaf."""

from __future__ import annotations

from dataclasses import dataclass

from edgefer.detect.types import DETECTOR_NAMES
from edgefer.labels import CLASS_NAMES

PROBABILITY_COLUMNS = tuple(f"p_{name}" for name in CLASS_NAMES)
FACE_COLUMNS = ("file", "frame", "timestamp_s", "x", "y", "w", "h", "score", "emotion", *PROBABILITY_COLUMNS,
                "model", "detector")


@dataclass
class BulkConfig:
    sources: list[str]
    out: str
    stride: int = 1                    # every Nth frame of a video
    max_fps: float | None = None       # sample videos at most this many frames per second
    model: str = ""                    # default: the shipped int8 mini-Xception
    detector: str = "mtcnn"
    min_face_size: int = 40
    tta: bool = False
    tta_shift: int = 0                 # TTA also over shifted views (as edgefer run)
    margin: float = 0.0                # enlarge each box before cropping (as edgefer run)
    workers: int | None = None         # actors; default: the cluster's CPUs (at least 1)
    address: str | None = None         # None: a local Ray instance; "auto" or ray://HOST:10001: a cluster
    chunk_frames: int = 300            # a long video is split into ranges of this many frames
    threads: int = 1                   # inference threads per worker

    def validate(self) -> None:
        checks = [
            (bool(self.sources), "SOURCES", self.sources, "at least one image, video, folder, glob or list file"),
            (self.stride >= 1, "--stride", self.stride, "an integer >= 1"),
            (self.max_fps is None or self.max_fps > 0, "--max-fps", self.max_fps, "frames per second > 0"),
            (self.detector in DETECTOR_NAMES, "--detector", self.detector, f"one of {', '.join(DETECTOR_NAMES)}"),
            (self.min_face_size >= 12, "--min-face-size", self.min_face_size, "at least 12 pixels"),
            (0 <= self.margin <= 2, "--margin", self.margin, "a fraction 0-2"),
            (0 <= self.tta_shift <= 8, "--tta-shift", self.tta_shift, "pixels 0-8"),
            (self.workers is None or self.workers >= 1, "--workers", self.workers, "an integer >= 1"),
            (self.chunk_frames >= 1, "--chunk-frames", self.chunk_frames, "an integer >= 1"),
        ]
        for ok, option, value, expected in checks:
            if not ok:
                raise ValueError(f"{option} {value}: expected {expected}")

    def step(self, fps: float) -> int:
        """Keep every step-th frame: --stride, or fewer when --max-fps asks for it."""
        step = self.stride
        if self.max_fps and fps > self.max_fps:
            step = max(step, int(-(-fps // self.max_fps)))
        return step
