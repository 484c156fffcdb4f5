"""The face pipeline's options, declared once (default, range, help) for `edgefer run`, `edgefer bulk` and
the Python API: their configs inherit these fields. A leaf."""

from __future__ import annotations

from dataclasses import dataclass

from edgefer.detect.types import DEFAULT_DETECTOR, DETECTOR_NAMES, MIN_FACE_SIZE
from edgefer.options import option

TTA_SHIFT_HELP = ("With TTA, also average over both views moved this many pixels left/right/up/down "
                  "(10 views, 10x classify cost; implies --tta).")


@dataclass(kw_only=True)
class PipelineOptions:
    model: str = option("", help="Classifier .tflite/.onnx/.keras, or a training run directory.",
                        show_default="the shipped int8 mini-Xception")
    detector: str = option(DEFAULT_DETECTOR, choices=DETECTOR_NAMES,
                           help="Face detector: yunet (OpenCV; most recall on real photos, fast), mtcnn (LiteRT, the "
                                "paper's), blazeface (LiteRT, faces near the camera), blazeface_full (farther) or haar.")
    min_face_size: int = option(MIN_FACE_SIZE, min=12, max=4096, help="Smallest face to detect, pixels.")
    score_threshold: float | None = option(None, min=0, max=1, min_open=True, max_open=True,
                                           help="Detector score threshold (yunet, blazeface, blazeface_full).",
                                           show_default="the detector's: yunet 0.6, blazeface 0.5")
    nms_threshold: float | None = option(None, min=0, max=1, min_open=True, max_open=True,
                                         help="Detector non-maximum-suppression IoU (yunet, blazeface, blazeface_full).",
                                         show_default="the detector's: 0.3")
    threads: int = option(1, min=1, max=256, help="Inference threads (LiteRT, ONNX Runtime, OpenCV).")
    margin: float = option(0.0, min=0, max=2, help="Enlarge each face box by this fraction before cropping.")
    tta: bool = option(False, help="Average each face's prediction with its mirror image (2x classify cost).")
    tta_shift: int = option(0, min=0, max=8, help=TTA_SHIFT_HELP)

    def detector_options(self) -> dict:
        return {"min_face_size": self.min_face_size, "threads": self.threads,
                "score_threshold": self.score_threshold, "nms_threshold": self.nms_threshold}
