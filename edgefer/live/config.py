"""What `edgefer run` is told (RunConfig), each frame it reads (Frame) and what it reports (RunSummary).
A leaf: imports only the detector names from the detection leaf."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from edgefer.detect.types import DETECTOR_NAMES

STAGES = ("capture", "detect", "classify", "draw")

# Exit codes of `edgefer run` (besides 2: bad input)
EXIT_OK = 0                # the source ended, or --max-frames was reached
EXIT_DAMAGED = 3           # the source broke off: a truncated video, a camera or stream lost for good
EXIT_SIGNAL = {"SIGINT": 130, "SIGHUP": 129, "SIGTERM": 143}   # 128 + the signal's number, as shells report


@dataclass
class RunConfig:
    source: str = "0"
    model: str = ""
    detector: str = "mtcnn"
    min_face_size: int = 40
    detect_every: int = 1          # run the detector every k frames; hold tracked boxes in between
    smoothing: float = 0.0         # EMA weight of the past for each tracked face's probabilities (0 = off)
    threads: int = 1
    margin: float = 0.0
    tta: bool = False              # average each face with its mirror image
    tta_shift: int = 0             # also with both moved this many pixels four ways (10 views; implies tta)
    max_frames: int | None = None
    save: str | None = None        # annotated video (.mp4/.avi) or a folder for images
    json_path: str | None = None   # JSON Lines, appended: a restart never empties it
    rotate_mb: float = 0.0         # rotate json_path past this size (file.1 ... file.5); 0: never
    retry_seconds: float = 0.0     # camera/stream: keep reopening a lost source this long (backoff 1-30 s)
    show: bool = True
    resolution: tuple[int, int] | None = None  # camera capture size request
    providers: list[str] | None = None          # ONNX Runtime execution providers, in order of preference
    serve: str | None = None       # [HOST:]PORT of the browser view (a bare port binds 127.0.0.1)
    serve_token: str | None = None  # required on every request when set (or EDGEFER_SERVE_TOKEN)
    serve_max_viewers: int = 4
    serve_stall_seconds: float = 5.0  # /healthz turns 503 this long after the last frame

    def validate(self) -> None:
        """One-line errors naming the option, before any model is loaded or file opened."""
        checks = [
            (self.detector in DETECTOR_NAMES, "--detector", self.detector, f"one of {', '.join(DETECTOR_NAMES)}"),
            (self.min_face_size >= 12, "--min-face-size", self.min_face_size, "at least 12 pixels (MTCNN's cell)"),
            (self.detect_every >= 1, "--detect-every", self.detect_every, "an integer >= 1"),
            (0 <= self.smoothing < 1, "--smoothing", self.smoothing, "a weight in [0, 1)"),
            (self.threads >= 1, "--threads", self.threads, "an integer >= 1"),
            (0 <= self.margin <= 2, "--margin", self.margin, "a fraction in [0, 2]"),
            (self.tta_shift >= 0, "--tta-shift", self.tta_shift, "pixels >= 0"),
            (self.max_frames is None or self.max_frames >= 1, "--max-frames", self.max_frames, "an integer >= 1"),
            (self.rotate_mb >= 0, "--rotate-mb", self.rotate_mb, "megabytes >= 0 (0: never)"),
            (self.retry_seconds >= 0, "--retry-seconds", self.retry_seconds, "seconds >= 0"),
            (self.resolution is None or min(self.resolution) >= 1, "--resolution", self.resolution, "WIDTHxHEIGHT"),
            (self.serve_max_viewers >= 1, "--serve-max-viewers", self.serve_max_viewers, "an integer >= 1"),
            (self.serve_stall_seconds > 0, "--serve-stall-seconds", self.serve_stall_seconds, "seconds > 0"),
        ]
        for ok, option, value, expected in checks:
            if not ok:
                raise ValueError(f"{option} {value}: expected {expected}")


class Frame(NamedTuple):
    """One frame of a source: its index, its time in the video or since the camera opened (None for
    photos, which have no time), the BGR image, and the file it came from (photos and folders)."""

    index: int
    timestamp: float | None
    image: np.ndarray
    file: str | None = None


@dataclass
class RunSummary:
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    stopped: str = "end of source"
    exit_code: int = EXIT_OK
    unreadable: list[str] = field(default_factory=list)   # files of a folder that could not be decoded
    reconnects: int = 0                                     # camera/stream reopened after a loss

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def mean_ms(self) -> dict[str, float]:
        return {s: (t / self.frames if self.frames else 0.0) for s, t in self.stage_ms.items()}

    def as_dict(self) -> dict:
        return {"frames": self.frames, "faces": self.faces, "seconds": round(self.seconds, 3),
                "fps": round(self.fps, 2), "ms_per_frame": {k: round(v, 3) for k, v in self.mean_ms().items()},
                "stopped": self.stopped, "exit_code": self.exit_code, "unreadable": self.unreadable,
                "reconnects": self.reconnects}
