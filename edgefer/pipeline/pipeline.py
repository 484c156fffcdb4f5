"""The one face pipeline: detect -> grey -> crop (with the margin) -> classify (with TTA) -> track/smooth.

`edgefer run`, `edgefer bulk`, the browser view (through run's records) and the benchmarks all go through
`FacePipeline`, so the same frame gives the same faces and expressions everywhere. Imports no TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefer.detect import Detection, crop_face, make_detector, to_gray
from edgefer.detect.types import DEFAULT_DETECTOR, MIN_FACE_SIZE, Detector
from edgefer.pipeline.config import PipelineOptions
from edgefer.pipeline.face import Face
from edgefer.pipeline.tracks import FaceTracks
from edgefer.runtime import DEFAULT_MODEL, load_classifier


class FacePipeline:
    """Faces and their expressions in a BGR (or grey) uint8 image.

    `faces(image)` detects and classifies; `classify(image, detections)` classifies boxes found earlier (the
    live loop's --detect-every holds boxes between detections). With `track=True` faces get track ids across
    calls and their probabilities are smoothed by `smoothing` (an EMA weight of the past); `reset()` forgets
    the tracks (unrelated photos). Without tracking, ids are the faces' order in the image.
    """

    def __init__(self, detector: Detector, classifier, margin: float = 0.0, tta: bool = False, tta_shift: int = 0,
                 smoothing: float = 0.0, track: bool = True):
        if not isinstance(detector, Detector):
            raise TypeError(f"detector {type(detector).__name__} has no detect(image) method")
        self.detector, self.classifier = detector, classifier
        self.margin, self.tta, self.tta_shift = float(margin), bool(tta or tta_shift), int(tta_shift)
        self.smoothing, self.track = float(smoothing), bool(track)
        self.class_names = tuple(classifier.info.class_names)
        self.tracks = FaceTracks(self.smoothing)

    @classmethod
    def create(cls, model: str | Path | None = None, detector: str = DEFAULT_DETECTOR, min_face_size: int = MIN_FACE_SIZE,
               threads: int = 1, providers=None, score_threshold=None, nms_threshold=None,
               **options) -> "FacePipeline":
        """Load a classifier (.tflite/.onnx/.keras or a run directory; default the shipped int8 model) and a
        detector by name; `options` are the pipeline's (margin, tta, tta_shift, smoothing, track)."""
        detector = make_detector(detector, min_face_size=min_face_size, threads=threads,
                                 score_threshold=score_threshold, nms_threshold=nms_threshold)
        classifier = load_classifier(model or DEFAULT_MODEL, threads=threads, providers=providers)
        return cls(detector, classifier, **options)

    @classmethod
    def from_options(cls, options: PipelineOptions, providers=None, **extra) -> "FacePipeline":
        """The pipeline a run or bulk config describes (`extra`: smoothing, track)."""
        return cls.create(options.model, options.detector, providers=providers, margin=options.margin,
                          tta=options.tta, tta_shift=options.tta_shift,
                          **options.detector_options(), **extra)

    def reset(self) -> None:
        self.tracks = FaceTracks(self.smoothing)

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.detector.detect(image)

    def faces(self, image: np.ndarray) -> list[Face]:
        return self.classify(image, self.detect(image))

    def crops(self, image: np.ndarray, detections: list[Detection]) -> np.ndarray:
        """The classifier's inputs: (N, size, size) uint8 grey squares around each box, enlarged by the margin."""
        size = self.classifier.info.input_size
        if not detections:
            return np.zeros((0, size, size), np.uint8)
        gray = to_gray(image)
        return np.stack([crop_face(gray, d, size, self.margin) for d in detections])

    def classify(self, image: np.ndarray, detections: list[Detection]) -> list[Face]:
        if not detections:
            probabilities = np.zeros((0, len(self.class_names)), np.float32)
        else:
            crops = self.crops(image, detections)
            probabilities = (self.classifier.predict_tta(crops, shift=self.tta_shift) if self.tta
                             else self.classifier.predict(crops))
        if self.track:
            ids, probabilities = self.tracks.update(detections, probabilities)
        else:
            ids = list(range(len(detections)))
        return [Face(d.box, float(d.score), np.asarray(p, np.float32), self.class_names, d.landmarks, track)
                for track, d, p in zip(ids, detections, probabilities)]
