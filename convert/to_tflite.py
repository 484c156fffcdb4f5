"""Keras -> TFLite through a SavedModel with an explicit input signature (dynamic batch)."""

from __future__ import annotations

import tempfile
from typing import Callable, Iterable

import numpy as np

from edgefer.errors import EdgeferError

TFLITE_MODES = ("float32", "float16", "dynamic", "int8")


def keras_to_tflite(model, input_shape: tuple[int, ...], mode: str,
                    calibration: Callable[[], Iterable[np.ndarray]] | None = None) -> bytes:
    """mode: float32 | float16 (weights) | dynamic (int8 weights, float activations) | int8 (full integer).

    The model's inference function goes through a SavedModel in a temporary folder that is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="edgefer_savedmodel_") as folder:
        _write_saved_model(model, input_shape, folder)
        return _convert_saved_model(folder, mode, calibration)


def _write_saved_model(model, input_shape: tuple[int, ...], folder: str) -> None:
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve",
        fn=lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, *input_shape), tf.float32, name="face")],
    )
    archive.write_out(folder, verbose=False)


def _convert_saved_model(saved_model: str, mode: str, calibration) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if calibration is None:
            raise EdgeferError("full-integer quantisation needs calibration images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None].astype(np.float32)] for x in calibration())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif mode != "float32":
        raise EdgeferError(f"unknown TFLite mode {mode!r}; expected one of {', '.join(TFLITE_MODES)}")
    return converter.convert()
