"""Put the int8 input grid on the pixel grid, so that quantising a face's input rounds nothing.

edgefer's models read x = pixel / 127.5 - 1. Full-integer models quantise x with a scale of 2/255 (its range
[-1, 1] over 255 steps), and on that grid every pixel falls exactly halfway between two int8 levels
(x / scale = pixel - 127.5): which way each rounds then depends on float error, some pixels go up and others
down, and the int8 model sees a slightly distorted face. Over 8 calibration sets the shipped model's int8 TFLite
scored 64.22-65.00 % on PublicTest this way (`benchmarks/int8_input_grid.py`).

The cure is exact: the int8 model takes x' = (pixel - 128) / 127.5 = x - 1/255 instead, quantised as
q = pixel - 128 (scale 2/255, zero point 0), and the 1/255 it lacks is folded into the first layer. Where that
layer is a convolution without padding, conv(x' + c) = conv(x') + c * (sum of each filter's weights): a
per-filter constant that the convolution's bias, or the moving mean of the batch normalisation right after it,
absorbs. A convolution with zero padding would see the shift at the border too, so such models keep x.
"""

from __future__ import annotations

import numpy as np

from edgefer.data import scale_to_unit_range
from edgefer.runtime import ModelInfo

INPUT_SCALE = ModelInfo.input_scale    # x = pixel * INPUT_SCALE + FLOAT_OFFSET, what the models train on
FLOAT_OFFSET = ModelInfo.input_offset
PIXEL_GRID_OFFSET = -128 / 127.5   # x' = (pixel - 128) / 127.5: integer levels on a 2/255 grid


def _consumers(model, tensor) -> list:
    """Layers of a functional or sequential model that take `tensor` as (one of) their inputs."""
    def inputs(layer):
        return layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]

    return [layer for layer in model.layers if any(t is tensor for t in inputs(layer))]


def fold_input_shift(model, shift: float):
    """A copy of `model` that gives model(x + shift) when fed x, with the shift folded into the first
    convolution's bias or its batch normalisation's moving mean; None where no exact fold exists."""
    import keras

    first = _consumers(model, model.inputs[0])
    if len(first) != 1 or not isinstance(first[0], keras.layers.Conv2D) or first[0].padding != "valid":
        return None
    conv = first[0]
    after = _consumers(model, conv.output)
    norm = after[0] if len(after) == 1 and isinstance(after[0], keras.layers.BatchNormalization) else None
    if not conv.use_bias and norm is None:
        return None
    folded = keras.models.clone_model(model)
    folded.set_weights(model.get_weights())
    per_filter = shift * np.asarray(conv.kernel).sum(axis=(0, 1, 2))
    if conv.use_bias:
        target = folded.get_layer(conv.name).bias
        target.assign(np.asarray(target) + per_filter)
    else:
        target = folded.get_layer(norm.name).moving_mean
        target.assign(np.asarray(target) - per_filter)
    return folded


def int8_input_model(model) -> tuple[object, float]:
    """The model to quantise to full integer and the input offset its sidecar records: the folded copy that
    reads x' on the pixel grid where an exact fold exists, else the model itself reading x."""
    folded = fold_input_shift(model, FLOAT_OFFSET - PIXEL_GRID_OFFSET)
    return (folded, PIXEL_GRID_OFFSET) if folded is not None else (model, FLOAT_OFFSET)


def scale_for_input(faces_u8: np.ndarray, offset: float) -> np.ndarray:
    """(N, S, S) uint8 faces -> (N, S, S, 1) float32 inputs of a model whose sidecar records `offset`."""
    return (scale_to_unit_range(faces_u8) + np.float32(offset - FLOAT_OFFSET))[..., None]
