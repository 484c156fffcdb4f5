"""The on-device loop (`edgefer run`): sources, detection + classification per frame, tracks, outputs,
device profiles. Works on the base install: no TensorFlow, no `mtcnn` package."""

from edgefer.live.config import STAGES, RunConfig, RunSummary
from edgefer.live.loop import run
from edgefer.live.sources import FrameSource, SourceError
from edgefer.media import DEMO_IMAGE
from edgefer.pipeline.tracks import FaceTracks, box_iou

__all__ = ["DEMO_IMAGE", "STAGES", "FaceTracks", "FrameSource", "RunConfig", "RunSummary", "SourceError",
           "box_iou", "run"]
