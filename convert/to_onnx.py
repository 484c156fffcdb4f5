"""Keras -> ONNX with tf2onnx (explicit input signature; Keras 3 models need it), and ONNX int8."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

OPSET = 17


def convert_onnx(model, input_shape: tuple[int, ...], metadata: dict[str, str]) -> bytes:
    import tensorflow as tf
    import tf2onnx

    spec = [tf.TensorSpec((None, *input_shape), tf.float32, name="face")]
    function = tf.function(lambda x: model(x, training=False), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET)
    _set_metadata(proto, metadata)
    return proto.SerializeToString()


def _set_metadata(proto, metadata: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)


def quantize_onnx_int8(float_model: Path, target: Path, calibration: Iterable[np.ndarray], metadata: dict) -> None:
    """Static QDQ int8 quantisation with ONNX Runtime, calibrated on real faces (already scaled)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    input_name = onnx.load(str(float_model)).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{input_name: x[None].astype(np.float32)} for x in calibration])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(float_model), str(target), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True)
    proto = onnx.load(str(target))
    _set_metadata(proto, metadata)
    onnx.save(proto, str(target))
