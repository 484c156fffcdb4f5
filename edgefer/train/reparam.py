"""Structural re-parameterization: train mini-Xception wide, ship it at exactly 58,423 parameters.

The training form replaces every convolution + batch norm of the paper's model with a sum of parallel
branches, each a convolution with its own batch norm (Ding et al. 2021, RepVGG; Vasu et al. 2023,
MobileOne): `branches` copies of the layer's own kernel, a 1x1 kernel for 3x3 layers, and a batch norm of
the input itself where the shapes allow. In inference mode every branch is linear, so the sum folds into
one kernel and one bias, and `merge_branches` writes those into the plain `mini_xception` layer by layer.
The extra branches change how the model trains (the loss surface of an over-parameterized model), not
what it can compute.

Inside a separable convolution the depthwise branches fold into the depthwise kernel plus a per-channel
bias; the plain model has no bias there, so that bias is carried through the pointwise kernel into the
batch norm after it, where a constant belongs.
"""

from __future__ import annotations

import itertools

import numpy as np

from edgefer.errors import EdgeferError
from edgefer.labels import NUM_CLASSES
from edgefer.models import BN_MOMENTUM, DEFAULT_L2, MINI_XCEPTION_BLOCKS, PlainUnits, mini_xception

EXPANDED_NAME = "mini_xception_expanded"


def _layers():
    import keras

    return keras.layers


def _norm(name: str):
    return _layers().BatchNormalization(momentum=BN_MOMENTUM, name=name)


def _branch_sum(outputs: list, name: str):
    return outputs[0] if len(outputs) == 1 else _layers().Add(name=f"{name}_sum")(outputs)


class BranchUnits(PlainUnits):
    """mini_xception's convolutions as sums of parallel conv+BN branches (names extend the plain layer's:
    `stem_conv1_k1`, `block2_sepconv1_dw_1x1_bn`, `head_conv_sum`)."""

    model_name = EXPANDED_NAME

    def __init__(self, branches: int):
        if branches < 1:
            raise EdgeferError(f"--branches {branches}: expected at least 1 parallel branch per convolution")
        self.branches = branches

    def conv(self, x, conv_name, norm_name, filters, size, padding, reg=None, strides=1):
        """`branches` size x size conv+BN branches, a 1x1 conv+BN (size 3) and a BN of the input (same
        channels, stride 1). 'valid' padding crops the smaller branches' input to the 3x3 centre."""
        layers = _layers()
        outputs = []
        for index in range(1, self.branches + 1):
            y = layers.Conv2D(filters, size, strides=strides, padding=padding, use_bias=False,
                              kernel_regularizer=reg, name=f"{conv_name}_k{index}")(x)
            outputs.append(_norm(f"{conv_name}_k{index}_bn")(y))
        centre = layers.Cropping2D(size // 2, name=f"{conv_name}_crop")(x) if padding == "valid" and size > 1 else x
        if size > 1:
            y = layers.Conv2D(filters, 1, strides=strides, use_bias=False, kernel_regularizer=reg,
                              name=f"{conv_name}_1x1")(centre)
            outputs.append(_norm(f"{conv_name}_1x1_bn")(y))
        if strides == 1 and x.shape[-1] == filters:
            outputs.append(_norm(f"{conv_name}_id_bn")(centre))
        return _branch_sum(outputs, conv_name)

    def separable(self, x, conv_name, norm_name, filters, reg=None):
        """The depthwise half (3x3 branches, a 1x1 and the identity, each with a BN), then the pointwise."""
        layers = _layers()
        depthwise = f"{conv_name}_dw"
        outputs = []
        for index in range(1, self.branches + 1):
            y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, depthwise_regularizer=reg,
                                       name=f"{depthwise}_k{index}")(x)
            outputs.append(_norm(f"{depthwise}_k{index}_bn")(y))
        y = layers.DepthwiseConv2D(1, use_bias=False, depthwise_regularizer=reg, name=f"{depthwise}_1x1")(x)
        outputs.append(_norm(f"{depthwise}_1x1_bn")(y))
        outputs.append(_norm(f"{depthwise}_id_bn")(x))
        x = _branch_sum(outputs, depthwise)
        return self.conv(x, f"{conv_name}_pw", norm_name, filters, 1, "same", reg)

    def head(self, x, num_classes):
        return self.conv(x, "head_conv", None, num_classes, 3, "same")


def expanded_mini_xception(input_size: int = 48, num_classes: int = NUM_CLASSES, l2: float = DEFAULT_L2,
                           channels: int = 1, width: float = 1.0, dropout: float = 0.0, branches: int = 1):
    """mini-Xception's training form with parallel branches; `merge_branches` folds it into the plain model."""
    return mini_xception(input_size, num_classes, l2, channels, width, dropout, units=BranchUnits(branches))


def is_expanded(model) -> bool:
    return model.name == EXPANDED_NAME


# --------------------------------------------------------------------------- folding


def _fold_norm(model, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A batch norm's inference-mode affine map y = scale * x + shift, per channel."""
    layer = model.get_layer(name)
    gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in layer.get_weights())
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return scale, beta - mean * scale


def _kernel(model, name: str) -> np.ndarray:
    return np.asarray(model.get_layer(name).get_weights()[0], np.float64)


def _centred(kernel_1x1: np.ndarray, size: int) -> np.ndarray:
    """A 1x1 kernel as the equivalent size x size kernel (zeros around the centre)."""
    full = np.zeros((size, size) + kernel_1x1.shape[2:])
    full[size // 2, size // 2] = kernel_1x1[0, 0]
    return full


def _identity_kernel(size: int, channels: int, depthwise: bool) -> np.ndarray:
    if depthwise:
        kernel = np.zeros((size, size, channels, 1))
        kernel[size // 2, size // 2, :, 0] = 1.0
    else:
        kernel = np.zeros((size, size, channels, channels))
        kernel[size // 2, size // 2] = np.eye(channels)
    return kernel


def _merge_unit(model, name: str, size: int, depthwise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The (kernel, bias) of the single convolution equal to a unit's branches in inference mode."""
    names = {layer.name for layer in model.layers}
    kernel, bias = 0.0, 0.0
    for index in itertools.count(1):
        if f"{name}_k{index}" not in names:
            break
        scale, shift = _fold_norm(model, f"{name}_k{index}_bn")
        kernel, bias = kernel + _scaled(_kernel(model, f"{name}_k{index}"), scale, depthwise), bias + shift
    if size > 1:
        scale, shift = _fold_norm(model, f"{name}_1x1_bn")
        kernel = kernel + _scaled(_centred(_kernel(model, f"{name}_1x1"), size), scale, depthwise)
        bias = bias + shift
    if f"{name}_id_bn" in names:
        scale, shift = _fold_norm(model, f"{name}_id_bn")
        kernel = kernel + _scaled(_identity_kernel(size, len(scale), depthwise), scale, depthwise)
        bias = bias + shift
    return kernel, bias


def _scaled(kernel: np.ndarray, scale: np.ndarray, depthwise: bool) -> np.ndarray:
    """Multiply each output channel's kernel by its batch-norm scale."""
    return kernel * (scale[None, None, :, None] if depthwise else scale)


def _set_plain_norm(plain, name: str, bias: np.ndarray) -> None:
    """Make a batch norm of the plain model the map x -> x + bias in inference mode."""
    layer = plain.get_layer(name)
    ones = np.ones_like(bias)
    layer.set_weights([ones, bias, np.zeros_like(bias), ones - layer.epsilon])


def merge_branches(expanded, width: float = 1.0):
    """The plain mini_xception (58,423 parameters at width 1) computing what `expanded` computes in
    inference mode, up to float rounding. `width` is the multiplier both were built with."""
    if not is_expanded(expanded):
        raise EdgeferError(f"{expanded.name}: not an expanded mini_xception (expected a model built by "
                         "expanded_mini_xception, e.g. a --branches run's best.keras)")
    face = expanded.input_shape
    dropout = "head_dropout" in {layer.name for layer in expanded.layers}
    rate = expanded.get_layer("head_dropout").rate if dropout else 0.0
    plain = mini_xception(face[1], expanded.output_shape[-1], l2=0.0, channels=face[3], width=width,
                          dropout=rate)
    for index in (1, 2):
        kernel, bias = _merge_unit(expanded, f"stem_conv{index}", 3)
        plain.get_layer(f"stem_conv{index}").set_weights([kernel])
        _set_plain_norm(plain, f"stem_bn{index}", bias)
    for block in range(1, len(MINI_XCEPTION_BLOCKS) + 1):
        name = f"block{block}"
        kernel, bias = _merge_unit(expanded, f"{name}_shortcut", 1)
        plain.get_layer(f"{name}_shortcut").set_weights([kernel])
        _set_plain_norm(plain, f"{name}_shortcut_bn", bias)
        for step in (1, 2):
            unit = f"{name}_sepconv{step}"
            depthwise, depthwise_bias = _merge_unit(expanded, f"{unit}_dw", 3, depthwise=True)
            pointwise, pointwise_bias = _merge_unit(expanded, f"{unit}_pw", 1)
            plain.get_layer(unit).set_weights([depthwise, pointwise])
            _set_plain_norm(plain, f"{name}_bn{step}", pointwise_bias + depthwise_bias @ pointwise[0, 0])
    kernel, bias = _merge_unit(expanded, "head_conv", 3)
    plain.get_layer("head_conv").set_weights([kernel, bias])
    return plain
