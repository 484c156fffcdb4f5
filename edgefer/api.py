"""The one-call Python API: `edgefer.Analyzer` (as fer's `FER().detect_emotions`, deepface's `analyze` and
Ultralytics' `model.predict(stream=True)`).

    import edgefer
    analyzer = edgefer.Analyzer()                    # the shipped int8 model, the default detector
    result = analyzer.analyze("photo.jpg")           # a path or a BGR numpy image
    for face in result.faces:
        print(face.box, face.expression, face.confidence)
    result.save("annotated.jpg")
    for result in analyzer.stream("clip.mp4"):       # a video, camera index, stream URL, image or folder
        print(result.to_json())

No TensorFlow needed (a .keras model needs the train extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from edgefer.errors import EdgeferError
from edgefer.media import load_image
from edgefer.options import check
from edgefer.pipeline import Face, PipelineOptions
from edgefer.pipeline.pipeline import FacePipeline
from edgefer.pipeline.result import Result

__all__ = ["Analyzer", "Face", "Result"]


class Analyzer:
    """Faces and their expressions in images and streams. Options are `edgefer run`'s pipeline options:
    model, detector, min_face_size, score_threshold, nms_threshold, threads, margin, tta, tta_shift."""

    def __init__(self, model: str | Path | None = None, **options):
        self.options = PipelineOptions(model=str(model or ""), **options)
        check(self.options)
        self.pipeline = FacePipeline.from_options(self.options, track=False)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.pipeline.class_names

    def analyze(self, image: str | Path | np.ndarray) -> Result:
        """The faces of one image: a file path, or a BGR (or grey) uint8 array."""
        path = None
        if isinstance(image, (str, Path)):
            path = str(image)
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: no such image file")
            image, why = load_image(path)
            if image is None:
                raise EdgeferError(f"{path}: {why}")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise EdgeferError(f"image of shape {image.shape} and type {image.dtype}: expected a BGR, BGRA or grey "
                               f"uint8 image (H, W[, 3 or 4])")
        return Result(self.pipeline.faces(image), image, path)

    def stream(self, source: str | int, smoothing: float = 0.0, detect_every: int = 1) -> Iterator[Result]:
        """Results frame by frame from a video, camera index, stream URL, image or folder; faces keep track ids
        across frames (and `smoothing` averages each track's probabilities), as `edgefer run` does."""
        from edgefer.live.sources import FrameSource

        frames = FrameSource(str(source))
        photos = frames.kind in ("image", "folder")
        pipeline = FacePipeline(self.pipeline.detector, self.pipeline.classifier, margin=self.options.margin,
                                tta=self.options.tta, tta_shift=self.options.tta_shift, smoothing=smoothing)
        detections = []
        for count, frame in enumerate(frames.frames()):
            if photos:
                pipeline.reset()
            if photos or count % max(1, int(detect_every)) == 0:
                detections = pipeline.detect(frame.image)
            yield Result(pipeline.classify(frame.image, detections), frame.image, frame.file, frame.index,
                         frame.timestamp)
