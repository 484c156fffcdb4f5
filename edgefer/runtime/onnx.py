"""ONNX Runtime backend for `.onnx` classifiers (CPU, or the execution providers a device profile names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefer.extras import require
from edgefer.runtime.base import Classifier


class ONNXClassifier(Classifier):
    backend = "onnxruntime"

    def __init__(self, path, info, threads=None, providers=None):
        super().__init__(path, info)
        ort = require("onnxruntime", "onnx", f"{Path(path).name}: an .onnx model (or use the .tflite export)")

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
