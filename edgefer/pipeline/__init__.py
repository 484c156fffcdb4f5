"""The face pipeline (detect, crop, classify, track) and its typed result, shared by run, bulk and the API.

`FacePipeline` is imported on first use, so the options and result leaves (read by the command line to build
its options) load without the detectors' and runtimes' libraries."""

from edgefer.pipeline.config import PipelineOptions
from edgefer.pipeline.face import Face

__all__ = ["Face", "FacePipeline", "FaceTracks", "PipelineOptions", "box_iou"]


def __getattr__(name: str):
    if name == "FacePipeline":
        from edgefer.pipeline.pipeline import FacePipeline

        return FacePipeline
    if name in ("FaceTracks", "box_iou"):
        from edgefer.pipeline import tracks

        return getattr(tracks, name)
    raise AttributeError(f"module 'edgefer.pipeline' has no attribute {name!r}")
