"""One inference API over every model format: `load_classifier(path).predict(faces)`.

faces: uint8 (N, S, S) or (N, S, S, 1) grayscale; returns float32 (N, 7) probabilities.
Backends: LiteRT (`ai_edge_litert`, then `tflite_runtime`, then `tf.lite`) for .tflite, ONNX Runtime
for .onnx, Keras for .keras. Only the Keras backend imports TensorFlow/Keras.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgefer.labels import CLASS_NAMES

FORMATS = {".keras": "keras", ".tflite": "tflite", ".onnx": "onnx"}
WEIGHTS = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = WEIGHTS / "mini_xception_fer2013_int8.tflite"   # what `edgefer run` uses
DEFAULT_KERAS_MODEL = WEIGHTS / "mini_xception_fer2013.keras"


@dataclass
class ModelInfo:
    """What a model needs to be used correctly; read from the sidecar `<model>.json` when present."""

    name: str = "mini_xception"
    version: str = ""
    class_names: tuple[str, ...] = CLASS_NAMES
    input_size: int = 48
    channels: int = 1
    input_scale: float = 1 / 127.5   # x_model = pixel * scale + offset
    input_offset: float = -1.0
    extra: dict = field(default_factory=dict)

    @classmethod
    def for_model(cls, path: Path) -> "ModelInfo":
        sidecar = sidecar_path(path)
        if not sidecar.exists():
            return cls()
        values = json.loads(sidecar.read_text())
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values and k != "extra"}
        if "class_names" in known:
            known["class_names"] = tuple(known["class_names"])
        return cls(**known, extra={k: v for k, v in values.items() if k not in known})


def sidecar_path(model_path: str | os.PathLike) -> Path:
    path = Path(model_path)
    return path.with_name(path.name + ".json")


class Classifier:
    """Common front: input checks, scaling and batching; subclasses run one backend."""

    backend = "?"

    def __init__(self, path: Path, info: ModelInfo):
        self.path, self.info = path, info

    def predict(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        if faces.ndim == 4 and faces.shape[-1] == 1:
            faces = faces[..., 0]
        size = self.info.input_size
        if faces.ndim != 3 or faces.shape[1:] != (size, size):
            raise ValueError(f"expected faces of shape (N, {size}, {size}) uint8, got {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, len(self.info.class_names)), np.float32)
        return self._run(faces.astype(np.uint8, copy=False)[..., None])

    def predict_tta(self, faces: np.ndarray, shift: int = 0) -> np.ndarray:
        """Test-time augmentation: the mean prediction over the face and its mirror image, and with
        `shift` > 0 also over both moved `shift` pixels left, right, up and down (10 views)."""
        faces = np.asarray(faces)
        views = tta_views(faces[None] if faces.ndim == 2 else faces, shift)
        return np.mean([self.predict(view) for view in views], axis=0)

    def scaled(self, faces_u8: np.ndarray) -> np.ndarray:
        return faces_u8.astype(np.float32) * self.info.input_scale + self.info.input_offset

    def _run(self, faces_u8: np.ndarray) -> np.ndarray:  # (N, S, S, 1) uint8
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path}, backend={self.backend})"


def tta_views(faces: np.ndarray, shift: int = 0) -> list[np.ndarray]:
    """The views `predict_tta` averages over: (N, S, S[, 1]) faces, their mirror images and, for
    `shift` > 0, both translated by `shift` pixels in each of four directions with the border repeated."""
    if shift < 0:
        raise ValueError(f"TTA shift must be >= 0 pixels, got {shift}")
    mirrored = faces[:, :, ::-1]
    offsets = [(0, 0)] + ([(shift, 0), (-shift, 0), (0, shift), (0, -shift)] if shift else [])
    return [translate(view, dy, dx) for view in (faces, mirrored) for dy, dx in offsets]


def translate(faces: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move (N, H, W[, C]) images by (dy, dx) pixels, repeating the edge row/column into the gap."""
    if dy == 0 and dx == 0:
        return faces
    height, width = faces.shape[1:3]
    rows = np.clip(np.arange(height) - dy, 0, height - 1)
    cols = np.clip(np.arange(width) - dx, 0, width - 1)
    return faces[:, rows][:, :, cols]


class KerasClassifier(Classifier):
    backend = "keras"

    def __init__(self, path, info, threads=None):
        super().__init__(path, info)
        from edgefer.training import _configure_tensorflow

        _configure_tensorflow()
        import keras

        self.model = keras.saving.load_model(path, compile=False)
        shape = self.model.input_shape
        self.info.input_size = int(shape[1])
        self.batch_size = 256

    def _run(self, faces_u8):
        if len(faces_u8) <= 32:  # small batches: skip predict()'s per-call setup
            return np.asarray(self.model.predict_on_batch(self.scaled(faces_u8)), dtype=np.float32)
        from edgefer.training import predict_probabilities

        return predict_probabilities(self.model, faces_u8[..., 0], self.batch_size).astype(np.float32)


def litert_interpreter_class():
    """LiteRT first, then the deprecated tflite-runtime, then TensorFlow's bundled interpreter."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"
    except ImportError:
        pass
    import tensorflow as tf

    return tf.lite.Interpreter, "tf.lite"


class TFLiteClassifier(Classifier):
    backend = "tflite"

    def __init__(self, path, info, threads=None):
        super().__init__(path, info)
        interpreter_class, self.backend = litert_interpreter_class()
        self.interpreter = interpreter_class(model_path=str(path), num_threads=threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.info.input_size = int(self.input["shape"][1])
        self._batch = int(self.input["shape"][0])
        self.interpreter.allocate_tensors()
        self._lut = self._input_lookup_table()
        self._chunk = 64

    def _input_lookup_table(self) -> np.ndarray:
        """pixel 0-255 -> the model's input value (scaled, and quantised for int8 inputs): one gather per call."""
        scaled = self.scaled(np.arange(256, dtype=np.uint8))
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return scaled.astype(np.float32)
        scale, zero = self.input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(scaled / scale + zero), info.min, info.max).astype(dtype)

    def _ensure_batch(self, batch: int) -> None:
        if batch != self._batch:
            shape = list(self.input["shape"])
            shape[0] = batch
            self.interpreter.resize_tensor_input(self.input["index"], shape)
            self.interpreter.allocate_tensors()
            self._batch = batch

    def _dequantise(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] == np.float32:
            return y
        scale, zero = self.output["quantization"]
        return (y.astype(np.float32) - zero) * scale

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self._ensure_batch(len(x))
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return self._dequantise(self.interpreter.get_tensor(self.output["index"]))

    def _run(self, faces_u8):
        x = self._lut[faces_u8]
        if len(x) <= self._chunk:
            return self._invoke(x).astype(np.float32, copy=False)
        return np.concatenate([self._invoke(x[i:i + self._chunk]) for i in range(0, len(x), self._chunk)])


class ONNXClassifier(Classifier):
    backend = "onnxruntime"

    def __init__(self, path, info, threads=None, providers=None):
        super().__init__(path, info)
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        available = ort.get_available_providers()
        wanted = [p for p in (providers or ["CPUExecutionProvider"]) if p in available] or ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
        self.input = self.session.get_inputs()[0]
        if isinstance(self.input.shape[1], int):
            self.info.input_size = int(self.input.shape[1])
        self.input_is_uint8 = self.input.type == "tensor(uint8)"
        self._lut = self.scaled(np.arange(256, dtype=np.uint8)).astype(np.float32)

    def _run(self, faces_u8):
        x = faces_u8 if self.input_is_uint8 else self._lut[faces_u8]
        return np.asarray(self.session.run(None, {self.input.name: x})[0], dtype=np.float32)


def load_classifier(path: str | os.PathLike, threads: int | None = None, providers=None) -> Classifier:
    """Open a .keras, .tflite or .onnx classifier by its extension."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path}: unknown model format {path.suffix!r}; expected {', '.join(FORMATS)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    info = ModelInfo.for_model(path)
    try:
        if kind == "keras":
            return KerasClassifier(path, info, threads)
        if kind == "tflite":
            return TFLiteClassifier(path, info, threads)
        return ONNXClassifier(path, info, threads, providers)
    except (ValueError, RuntimeError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: cannot load as a {kind} model ({first_line})") from None


def time_single_face(classifier: Classifier, repeats: int = 200) -> float:
    """Median milliseconds for one face (batch 1), after a warm-up."""
    face = np.full((1, classifier.info.input_size, classifier.info.input_size), 128, np.uint8)
    for _ in range(10):
        classifier.predict(face)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        classifier.predict(face)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)
