"""One loader over every model format: `load_classifier(path)` picks the backend by the file's suffix."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from edgefer.errors import EdgeferError
from edgefer.runtime.base import Classifier
from edgefer.runtime.formats import RUNTIME_OF_SUFFIX
from edgefer.runtime.info import ModelInfo, sidecar_path
from edgefer.runtime.keras import KerasClassifier
from edgefer.runtime.litert import TFLiteClassifier
from edgefer.runtime.onnx import ONNXClassifier

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_MODEL = WEIGHTS / "mini_xception_fer2013_int8.tflite"   # what `edgefer run` uses
DEFAULT_KERAS_MODEL = WEIGHTS / "mini_xception_fer2013.keras"


def load_classifier(path: str | os.PathLike, threads: int | None = None, providers=None) -> Classifier:
    """Open a .keras, .tflite or .onnx classifier by its extension, or a training run directory (its
    weights/model.keras, as `edgefer evaluate` takes it)."""
    path = resolve_model_path(path)
    kind = RUNTIME_OF_SUFFIX[path.suffix.lower()]
    info = ModelInfo.for_model(path)
    if kind == "keras" and not zipfile.is_zipfile(path):   # Keras says "File not found" for a file that exists
        raise EdgeferError(f"{path}: not a .keras file (expected the zip archive Keras saves; is it damaged?)")
    try:
        if kind == "keras":
            classifier = KerasClassifier(path, info, threads)
        elif kind == "tflite":
            classifier = TFLiteClassifier(path, info, threads)
        else:
            classifier = ONNXClassifier(path, info, threads, providers)
    except ImportError:
        raise
    except Exception as error:  # noqa: BLE001 - every runtime's load error becomes one line naming the file
        raise EdgeferError(f"{path}: cannot load as a {kind} model ({_first_line(error)})") from None
    _probe(classifier)
    return classifier


def resolve_model_path(path: str | os.PathLike) -> Path:
    """The model file a path names: itself, or a training run directory's weights/model.keras."""
    path = Path(path)
    if path.is_dir():
        inside = path / "weights" / "model.keras"
        if not inside.is_file():
            raise EdgeferError(f"{path}: a folder without weights/model.keras (expected a model file "
                               f"({', '.join(RUNTIME_OF_SUFFIX)}) or a training run directory)")
        return inside
    if path.suffix.lower() not in RUNTIME_OF_SUFFIX:
        raise EdgeferError(f"{path}: unknown model format {path.suffix!r}; expected {', '.join(RUNTIME_OF_SUFFIX)} "
                           f"or a training run directory")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    return path


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(error).__name__


def _probe(classifier: Classifier) -> None:
    """One grey face through the model: a model that does not take (N, S, S, 1) grayscale faces, or whose
    output does not match its class names, fails here with one line instead of mid-run."""
    size, names = classifier.info.input_size, classifier.info.class_names
    try:
        out = classifier.predict(np.full((1, size, size), 128, np.uint8))
    except Exception as error:  # noqa: BLE001
        raise EdgeferError(f"{classifier.path}: does not take (N, {size}, {size}, 1) grayscale faces "
                         f"({_first_line(error)}); expected an edgefer face classifier") from None
    if out.ndim != 2 or out.shape[1] != len(names):
        raise EdgeferError(f"{classifier.path}: outputs shape {tuple(out.shape)} but its labels name {len(names)} "
                         f"classes ({', '.join(names)}); expected (N, {len(names)}) or a sidecar "
                         f"{sidecar_path(classifier.path).name} listing the class_names")
