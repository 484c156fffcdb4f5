"""What `edgefer run` is told (RunConfig), each frame it reads (Frame) and what it reports (RunSummary).
A leaf: imports only the option declarations and the pipeline's options leaf."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from edgefer.errors import OptionError
from edgefer.options import check, option
from edgefer.pipeline.config import PipelineOptions

STAGES = ("capture", "detect", "classify", "draw")

# Exit codes of `edgefer run` (besides 2: bad input)
EXIT_OK = 0                # the source ended, or --max-frames was reached
EXIT_DAMAGED = 3           # the source broke off: a truncated video, a camera or stream lost for good
EXIT_SIGNAL = {"SIGINT": 130, "SIGHUP": 129, "SIGTERM": 143}   # 128 + the signal's number, as shells report


@dataclass
class RunConfig(PipelineOptions):
    """`edgefer run`: the pipeline's options (PipelineOptions) and the loop's. Each field is declared once:
    the command line's options, their defaults, ranges and help come from here (edgefer.options)."""

    source: str = option("0", cli=False, help="Camera index, video, image, folder or stream URL.")
    detect_every: int = option(1, min=1, help="Detect every k frames, holding tracked boxes in between.")
    smoothing: float = option(0.0, min=0, max=0.99,
                              help="EMA weight of the past for each tracked face's probabilities (0 = off).")
    max_frames: int | None = option(None, min=1, help="Stop after this many frames.", show_default="no limit")
    save: str | None = option(None, show_default=False,
                              help="Annotated video (.mkv survives a power cut, .mp4, .avi), or a folder for images.")
    save_crops: str | None = option(None, show_default=False,
                                    help="A folder for each face's crop (its box grown by --margin, in colour): "
                                         "<photo or frame>_face<id>.jpg; never written over.")
    json_path: str | None = option(None, flag="--json", show_default=False,
                                   help="JSON Lines per frame, appended (flushed every frame).")
    rotate_mb: float = option(0.0, min=0,
                              help="Rotate the --json file when it passes this size (file.1, file.2 ...); 0: never.")
    retry_seconds: float = option(0.0, min=0, help="Camera/stream: keep reopening a lost source for this long "
                                                   "(backoff 1-30 s, a line per retry); 0: stop at once.")
    loop: bool = option(False, help="Files: start again at the end (a demo behind --serve); ends with Ctrl-C or "
                                    "--max-frames.")
    realtime: bool = option(False, help="Files: play a video at its own frame rate (photos: one a second), not as "
                                        "fast as the loop can.")
    show: bool = option(True, help="Show a window when OpenCV has a GUI and a display exists.")
    resolution: tuple[int, int] | None = option(None, cli=False, expected="WIDTHxHEIGHT",
                                                help="Camera capture size WxH, e.g. 640x480.")
    providers: list[str] | None = option(None, cli=False, help="ONNX Runtime execution providers, in order.")
    serve: str | None = option(None, show_default=False,
                               help="Browser view on [HOST:]PORT: / (page), /stream.mjpg, /events, /metrics, "
                                    "/healthz; a bare port binds 127.0.0.1.")
    serve_token: str | None = option(None, envvar="EDGEFER_SERVE_TOKEN", show_default=False,
                                     help="Require this token on every request (Authorization: Bearer TOKEN or "
                                          "?token=TOKEN).")
    serve_max_viewers: int = option(4, min=1, max=64, help="Most concurrent stream/event viewers.")
    serve_stall_seconds: float = option(5.0, min=0.1, help="/healthz answers 503 this long after the last frame.")

    def validate(self) -> None:
        """One-line errors naming the option, before any model is loaded or file opened."""
        check(self)
        if self.resolution is not None and min(self.resolution) < 1:
            raise OptionError(f"--resolution {self.resolution}: expected WIDTHxHEIGHT")
        if self.serve is not None and not str(self.serve).strip():
            raise OptionError("--serve '': expected [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080")
        if self.serve_token is not None and not self.serve_token.strip():
            raise OptionError("--serve-token '': expected a non-empty token (leave the option out for no "
                              "authentication); check EDGEFER_SERVE_TOKEN too")


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
    saved_video: str | None = None                          # where --save's video went (numbered if taken)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def mean_ms(self) -> dict[str, float]:
        return {s: (t / self.frames if self.frames else 0.0) for s, t in self.stage_ms.items()}

    def as_dict(self) -> dict:
        return {"frames": self.frames, "faces": self.faces, "seconds": round(self.seconds, 3),
                "fps": round(self.fps, 2), "ms_per_frame": {k: round(v, 3) for k, v in self.mean_ms().items()},
                "stopped": self.stopped, "exit_code": self.exit_code, "unreadable": self.unreadable,
                "reconnects": self.reconnects, "saved_video": self.saved_video}
