"""Face detection without TensorFlow: MTCNN on LiteRT (the paper's detector) and OpenCV's Haar cascade.

`make_detector(name).detect(bgr_image) -> list[Detection]`; `crop_face` cuts the classifier's input.
"""

from edgefer.detect.crop import crop_face, to_gray
from edgefer.detect.registry import DETECTORS, make_detector
from edgefer.detect.types import Detection

__all__ = ["DETECTORS", "Detection", "crop_face", "make_detector", "to_gray"]
