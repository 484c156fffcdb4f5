"""Keras backend for `.keras` classifiers (needs the `[train]` extra), and batched Keras prediction.

oneDNN trap (TensorFlow 2.21): a last batch smaller than the others can crash a oneDNN kernel, so
`predict_probabilities` pads the last batch to full size and drops the padding from the output.
"""

from __future__ import annotations

import math

import numpy as np

from edgefer.extras import require
from edgefer.runtime.base import Classifier
from edgefer.scaling import scale_to_unit_range
from edgefer.tfenv import configure_tensorflow


def predict_probabilities(model, images_u8: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax outputs for uint8 faces (N, S, S). Pads the last batch to full size (oneDNN guard)."""
    x = scale_to_unit_range(images_u8)[..., None]
    count = len(x)
    padded = math.ceil(count / batch_size) * batch_size
    if padded != count:
        x = np.concatenate([x, np.zeros((padded - count, *x.shape[1:]), x.dtype)])
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))[:count]


class KerasClassifier(Classifier):
    backend = "keras"

    def __init__(self, path, info, threads=None):
        super().__init__(path, info)
        configure_tensorflow()
        keras = require("keras", "train", f"{path.name}: a .keras model (use its .tflite or .onnx export on a device)")

        self.model = keras.saving.load_model(path, compile=False)
        shape = self.model.input_shape
        self.info.input_size = int(shape[1])
        self.batch_size = 256

    def _run(self, faces_u8):
        if len(faces_u8) <= 32:  # small batches: skip predict()'s per-call setup
            return np.asarray(self.model.predict_on_batch(self.scaled(faces_u8)), dtype=np.float32)
        return predict_probabilities(self.model, faces_u8[..., 0], self.batch_size).astype(np.float32)
