"""What `edgefer bulk` is told (BulkConfig) and the schema of what it writes. A leaf."""

from __future__ import annotations

from dataclasses import dataclass

from edgefer.errors import OptionError
from edgefer.options import check, option
from edgefer.pipeline.config import PipelineOptions
from edgefer.labels import CLASS_NAMES

PROBABILITY_COLUMNS = tuple(f"p_{name}" for name in CLASS_NAMES)
FACE_COLUMNS = ("file", "frame", "timestamp_s", "x", "y", "w", "h", "score", "emotion", *PROBABILITY_COLUMNS,
                "model", "detector")


@dataclass
class BulkConfig(PipelineOptions):
    """`edgefer bulk`: the pipeline's options (PipelineOptions, shared with `edgefer run`) and the job's.
    Each field is declared once: the command line's options come from here (edgefer.options)."""

    sources: list[str] = option(cli=False, help="Images, videos, folders (recursive), globs, or list files.")
    out: str = option(cli=False, help="Results folder.")
    stride: int = option(1, min=1, help="Every Nth frame of a video.")
    max_fps: float | None = option(None, min=0, min_open=True, show_default="every frame",
                                   help="Sample videos at most this many frames per second.")
    workers: int | None = option(None, min=1, max=1024, show_default="the cluster's CPUs, at most one per task",
                                 help="Worker actors.")
    address: str | None = option(None, show_default="a local Ray instance",
                                 help="An existing Ray cluster: auto, or ray://HOST:10001 (or RAY_ADDRESS).")
    chunk_frames: int = option(300, min=1, help="Split videos into ranges of this many frames (one task each).")

    def validate(self) -> None:
        if not self.sources:
            raise OptionError("SOURCES: expected at least one image, video, folder, glob or list file")
        check(self)

    def step(self, fps: float) -> int:
        """Keep every step-th frame: --stride, or fewer when --max-fps asks for it."""
        step = self.stride
        if self.max_fps and fps > self.max_fps:
            step = max(step, int(-(-fps // self.max_fps)))
        return step
