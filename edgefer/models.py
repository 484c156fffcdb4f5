"""Model registry: the paper's mini-Xception and the three baselines it is compared against.

Backend-agnostic Keras 3 (keras.layers only), so the same code runs on TensorFlow or JAX.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

from edgefer.errors import EdgeferError
from edgefer.labels import NUM_CLASSES

DEFAULT_L2 = 0.01  # the reference implementation's L2 factor
BN_MOMENTUM = 0.99
MINI_XCEPTION_BLOCKS = (16, 32, 64, 128)  # filters of the four residual blocks


def _keras():
    import keras

    return keras


def scaled(filters: int, width: float) -> int:
    """A layer's width under the width multiplier (at least 1)."""
    return max(1, int(round(filters * width)))


class PlainUnits:
    """The paper's convolutions, each followed by its batch norm. `edgefer.train.reparam` swaps in parallel
    branches at the same places, so both forms share one skeleton (`mini_xception`)."""

    model_name = "mini_xception"

    def conv(self, x, conv_name: str, norm_name: str, filters: int, size: int, padding: str, reg=None,
             strides: int = 1):
        layers = _keras().layers
        x = layers.Conv2D(filters, size, strides=strides, padding=padding, use_bias=False, kernel_regularizer=reg,
                          name=conv_name)(x)
        return layers.BatchNormalization(momentum=BN_MOMENTUM, name=norm_name)(x)

    def separable(self, x, conv_name: str, norm_name: str, filters: int, reg=None):
        layers = _keras().layers
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, depthwise_regularizer=reg,
                                   pointwise_regularizer=reg, name=conv_name)(x)
        return layers.BatchNormalization(momentum=BN_MOMENTUM, name=norm_name)(x)

    def head(self, x, num_classes: int):
        return _keras().layers.Conv2D(num_classes, 3, padding="same", name="head_conv")(x)


def mini_xception(input_size: int = 48, num_classes: int = NUM_CLASSES, l2: float = DEFAULT_L2, channels: int = 1,
                  width: float = 1.0, dropout: float = 0.0, units: PlainUnits | None = None):
    """The paper's model: 2 stem convs, 4 residual depthwise-separable blocks, conv head, GAP, softmax.

    58,423 parameters (56,951 trainable) at 48x48x1, 7 classes, width 1 and no dropout (the paper's).
    `units` builds the convolutions (default: the paper's; `edgefer.train.reparam` passes its training form).
    """
    keras = _keras()
    layers = keras.layers
    units = units or PlainUnits()
    reg = keras.regularizers.L2(l2) if l2 else None

    inputs = keras.Input((input_size, input_size, channels), name="face")
    x = inputs
    for index in (1, 2):
        x = units.conv(x, f"stem_conv{index}", f"stem_bn{index}", scaled(8, width), 3, "valid", reg)
        x = layers.ReLU(name=f"stem_relu{index}")(x)

    for block, filters in enumerate(MINI_XCEPTION_BLOCKS, start=1):
        name, filters = f"block{block}", scaled(filters, width)
        residual = units.conv(x, f"{name}_shortcut", f"{name}_shortcut_bn", filters, 1, "same", strides=2)
        for step in (1, 2):
            x = units.separable(x, f"{name}_sepconv{step}", f"{name}_bn{step}", filters, reg)
            if step == 1:
                x = layers.ReLU(name=f"{name}_relu")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
        x = layers.Add(name=f"{name}_add")([x, residual])

    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    x = units.head(x, num_classes)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Softmax(name="predictions")(x)
    return keras.Model(inputs, outputs, name=units.model_name)


def vgg(input_size: int = 48, num_classes: int = NUM_CLASSES, l2: float = 1e-4, channels: int = 1,
        width: float = 1.0, dropout: float = 0.4):
    """VGG-style baseline: 10 conv layers in 4 pooled stages, then 3 dense layers."""
    keras = _keras()
    layers = keras.layers
    reg = keras.regularizers.L2(l2) if l2 else None
    inputs = keras.Input((input_size, input_size, channels), name="face")
    x = inputs
    for stage, (filters, convs) in enumerate(((32, 2), (64, 2), (128, 3), (256, 3)), start=1):
        for index in range(1, convs + 1):
            x = layers.Conv2D(scaled(filters, width), 3, padding="same", use_bias=False, kernel_regularizer=reg,
                              name=f"stage{stage}_conv{index}")(x)
            x = layers.BatchNormalization(name=f"stage{stage}_bn{index}")(x)
            x = layers.ReLU(name=f"stage{stage}_relu{index}")(x)
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    for index, units in enumerate((512, 256), start=1):
        x = layers.Dense(scaled(units, width), activation="relu", kernel_regularizer=reg, name=f"fc{index}")(x)
        x = layers.Dropout(dropout, name=f"dropout{index}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="vgg")


def resnet50(input_size: int = 48, num_classes: int = NUM_CLASSES, l2: float = 0.0, channels: int = 1,
             width: float = 1.0, dropout: float = 0.0):
    """ResNet-50 trained from scratch (no ImageNet weights) on small grayscale faces."""
    if width != 1.0 or dropout:
        raise EdgeferError("resnet50 is keras.applications' fixed architecture: --width and --dropout do not apply")
    keras = _keras()
    model = keras.applications.ResNet50(
        include_top=True, weights=None, input_shape=(input_size, input_size, channels),
        classes=num_classes, classifier_activation="softmax",
    )
    del l2  # keras.applications builds without weight decay; BN and depth regularise it
    return keras.Model(model.inputs, model.outputs, name="resnet50")


def cnn(input_size: int = 48, num_classes: int = NUM_CLASSES, l2: float = 0.0, channels: int = 1,
        width: float = 1.0, dropout: float = 0.5):
    """The seed study's plain CNN: two 5x5 conv + max-pool stages, dense 500 and 300, softmax."""
    keras = _keras()
    layers = keras.layers
    reg = keras.regularizers.L2(l2) if l2 else None
    inputs = keras.Input((input_size, input_size, channels), name="face")
    x = inputs
    for index, filters in enumerate((32, 64), start=1):
        x = layers.Conv2D(scaled(filters, width), 5, padding="same", activation="relu", kernel_regularizer=reg,
                          name=f"conv{index}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    for index, units in enumerate((500, 300), start=1):
        x = layers.Dense(scaled(units, width), activation="relu", kernel_regularizer=reg, name=f"fc{index}")(x)
        x = layers.Dropout(dropout, name=f"dropout{index}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="cnn")


MODELS: dict[str, Callable] = {
    "mini_xception": mini_xception,
    "vgg": vgg,
    "resnet50": resnet50,
    "cnn": cnn,
}


def check_model_name(name: str) -> str:
    """The name if registered, else a ValueError that suggests the closest one."""
    if name not in MODELS:
        import difflib

        hint = difflib.get_close_matches(name, MODELS, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise EdgeferError(f"unknown model {name!r}{suggestion}; expected one of {', '.join(MODELS)}")
    return name


def build_model(name: str, input_size: int = 48, num_classes: int = NUM_CLASSES, l2: float | None = None,
                width: float = 1.0, dropout: float | None = None, units: PlainUnits | None = None):
    """Build a registered model by name; `l2=None` / `dropout=None` keep the model's own defaults.

    `width` multiplies every hidden layer's filters or units (the sweepable capacity knob). `units`
    (mini_xception only) builds its convolutions, e.g. `edgefer.train.reparam.BranchUnits` for the training form.
    """
    check_model_name(name)
    if not width > 0:
        raise EdgeferError(f"width {width}: expected a positive multiplier")
    if dropout is not None and not 0 <= dropout < 1:
        raise EdgeferError(f"dropout {dropout}: expected a rate in [0, 1)")
    kwargs = {"input_size": input_size, "num_classes": num_classes, "width": width}
    if l2 is not None:
        kwargs["l2"] = l2
    if dropout is not None:
        kwargs["dropout"] = dropout
    if units is not None:
        if name != "mini_xception":
            raise EdgeferError(f"{name}: only mini_xception takes other conv units (e.g. --branches)")
        kwargs["units"] = units
    return MODELS[name](**kwargs)


def load_face_model(path, purpose: str = "use"):
    """Load a trained .keras face classifier (S x S x 1 -> 7 classes) without its optimizer.

    Raises FileNotFoundError or ValueError with one line naming the file and what was expected.
    """
    from pathlib import Path

    keras = _keras()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found (expected a .keras file)")
    if path.suffix != ".keras":
        raise EdgeferError(f"{path}: expected a .keras model to {purpose}, got {path.suffix or 'no suffix'}")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # keras raises many types for a corrupt archive
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EdgeferError(f"{path}: not a readable Keras model ({reason[:160]})") from None
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 1 or model.output_shape[-1] != NUM_CLASSES:
        raise EdgeferError(f"{path}: unexpected model shape {shape} -> {model.output_shape}; "
                         f"expected (None, S, S, 1) -> (None, {NUM_CLASSES})")
    return model


@dataclass
class LayerReport:
    """The paper's Table 3 row for one model."""

    model: str
    conv_layers: int
    pooling_layers: int
    dense_layers: int
    parameters: int
    trainable_parameters: int

    def as_dict(self) -> dict:
        return asdict(self)


def layer_report(model) -> LayerReport:
    """Count conv (incl. separable/depthwise), pooling (incl. global) and dense layers, and parameters."""
    keras = _keras()
    conv = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)
    pool = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
            keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)
    counts = {"conv": 0, "pool": 0, "dense": 0}

    def visit(layer):
        if isinstance(layer, keras.Model):
            for inner in layer.layers:
                visit(inner)
        elif isinstance(layer, conv):
            counts["conv"] += 1
        elif isinstance(layer, pool):
            counts["pool"] += 1
        elif isinstance(layer, keras.layers.Dense):
            counts["dense"] += 1

    for layer in model.layers:
        visit(layer)
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return LayerReport(model.name, counts["conv"], counts["pool"], counts["dense"],
                       int(model.count_params()), int(trainable))
