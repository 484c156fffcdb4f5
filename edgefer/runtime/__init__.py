"""Inference runtimes behind one API: `load_classifier(path).predict(faces)` -> (N, classes) probabilities.

faces: uint8 (N, S, S) or (N, S, S, 1) grayscale. One file per backend: `litert` (.tflite), `onnx`
(.onnx), `keras` (.keras, the only one that imports TensorFlow); `loader` picks by suffix.
"""

from edgefer.runtime.base import Classifier, time_single_face, translate, tta_views
from edgefer.runtime.info import ModelInfo, sidecar_path
from edgefer.runtime.formats import FORMATS, Format
from edgefer.runtime.loader import DEFAULT_KERAS_MODEL, DEFAULT_MODEL, WEIGHTS, load_classifier

__all__ = ["Classifier", "ModelInfo", "DEFAULT_MODEL", "DEFAULT_KERAS_MODEL", "FORMATS", "Format", "WEIGHTS",
           "load_classifier", "sidecar_path", "time_single_face", "translate", "tta_views"]
