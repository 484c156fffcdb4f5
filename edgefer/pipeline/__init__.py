"""The face pipeline (detect, crop, classify, track) and its typed result, shared by run, bulk and the API."""

from edgefer.pipeline.face import Face
from edgefer.pipeline.pipeline import FacePipeline
from edgefer.pipeline.tracks import FaceTracks, box_iou

__all__ = ["Face", "FacePipeline", "FaceTracks", "box_iou"]
