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
    "name, conv, pool, dense, low, high",
    [
        ("vgg", 10, 4, 3, 1_000_000, 10_000_000),
        ("cnn", 2, 2, 3, 1_000_000, 10_000_000),
        ("resnet50", 53, 2, 1, 23_000_000, 25_000_000),
    ],
)
def test_baselines_layer_report(name, conv, pool, dense, low, high):
    model = build_model(name)
    report = layer_report(model)
    assert (report.conv_layers, report.pooling_layers, report.dense_layers) == (conv, pool, dense)
    assert low < report.parameters < high
    assert model.output_shape == (None, 7)


def test_input_size_is_a_parameter():
    model = build_model("mini_xception", input_size=64)
    assert model.input_shape == (None, 64, 64, 1) and model.output_shape == (None, 7)
    assert set(MODELS) == {"mini_xception", "vgg", "resnet50", "cnn"}


def test_unknown_model_suggests_closest():
    with pytest.raises(ValueError, match="did you mean 'mini_xception'"):
        build_model("mini_xceptoin")
