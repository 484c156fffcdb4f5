"""The registry: exact parameter counts of the paper's model, the baselines' layer counts."""

from __future__ import annotations

import pytest

from edgefer.models import MODELS, build_model, layer_report


def test_mini_xception_matches_the_paper():
    report = layer_report(build_model("mini_xception"))
    assert report.parameters == 58_423
    assert report.trainable_parameters == 56_951
    assert (report.conv_layers, report.dense_layers) == (15, 0)


@pytest.mark.parametrize(
    "name, conv, pool, dense, parameters",
    [
        ("vgg", 10, 4, 3, 3_226_663),
        ("cnn", 2, 2, 3, 4_813_003),
        ("resnet50", 53, 2, 1, 23_595_783),
    ],
)
def test_baselines_layer_report(name, conv, pool, dense, parameters):
    """Exact counts: a changed layer anywhere in a baseline changes its parameter count."""
    model = build_model(name)
    report = layer_report(model)
    assert (report.conv_layers, report.pooling_layers, report.dense_layers) == (conv, pool, dense)
    assert report.parameters == parameters
    assert model.output_shape == (None, 7)


def test_input_size_is_a_parameter():
    model = build_model("mini_xception", input_size=64)
    assert model.input_shape == (None, 64, 64, 1) and model.output_shape == (None, 7)
    assert set(MODELS) == {"mini_xception", "vgg", "resnet50", "cnn"}


def test_unknown_model_suggests_closest():
    with pytest.raises(ValueError, match="did you mean 'mini_xception'"):
        build_model("mini_xceptoin")


def test_width_and_dropout_are_model_parameters():
    half = build_model("mini_xception", width=0.5)
    assert half.get_layer("block4_sepconv2").filters == 64 and half.get_layer("stem_conv1").filters == 4
    assert half.count_params() < 58_423 / 2
    assert build_model("mini_xception", dropout=0.2).get_layer("head_dropout").rate == 0.2
    cnn = build_model("cnn", width=2.0, dropout=0.3)
    assert cnn.get_layer("fc1").units == 1000 and cnn.get_layer("dropout2").rate == 0.3
    with pytest.raises(ValueError, match="width 0.0: expected a positive multiplier"):
        build_model("cnn", width=0.0)
    with pytest.raises(ValueError, match="resnet50 is keras.applications' fixed architecture"):
        build_model("resnet50", width=0.5)
