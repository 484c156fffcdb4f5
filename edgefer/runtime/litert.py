"""LiteRT backend for `.tflite` classifiers: `ai_edge_litert`, then the deprecated `tflite_runtime`
(which needs numpy<2), then TensorFlow's bundled interpreter. No TensorFlow unless neither is installed."""

from __future__ import annotations

import numpy as np

from edgefer.runtime.base import Classifier
from edgefer.tfenv import native_stderr_quiet


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


def make_interpreter(path, threads: int | None, interpreter_class=None):
    """A LiteRT interpreter for `path`, its start-up line ("Created TensorFlow Lite XNNPACK delegate")
    kept out of the terminal unless edgefer runs with -v."""
    interpreter_class = interpreter_class or litert_interpreter_class()[0]
    with native_stderr_quiet():
        return interpreter_class(model_path=str(path), num_threads=threads)


def allocate(interpreter) -> None:
    with native_stderr_quiet():
        interpreter.allocate_tensors()


class TFLiteClassifier(Classifier):
    backend = "tflite"

    def __init__(self, path, info, threads=None):
        super().__init__(path, info)
        interpreter_class, self.backend = litert_interpreter_class()
        self.interpreter = make_interpreter(path, threads, interpreter_class)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.info.input_size = int(self.input["shape"][1])
        self._batch = int(self.input["shape"][0])
        allocate(self.interpreter)
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
            allocate(self.interpreter)
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
