"""Re-parameterized training (`--branches`): the merged model is the paper's and computes the same."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefer.train.reparam import expanded_mini_xception, merge_branches
from edgefer.runtime.keras import predict_probabilities
from edgefer.train import config_from_recipe, read_history, resume, train


def _randomise_batch_norms(model, seed=0):
    """Trained-looking statistics: with fresh ones (mean 0, variance 1) most folds would be trivial."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2.0, variance.shape)])


def _logits(model, faces):
    import keras

    return keras.Model(model.input, model.get_layer("gap").output).predict(faces, verbose=0)


@pytest.mark.parametrize("branches", [1, 2])
def test_merged_model_is_the_papers_and_computes_the_same(branches):
    from edgefer.models import build_model, layer_report

    expanded = expanded_mini_xception(branches=branches, l2=5e-4)
    _randomise_batch_norms(expanded)
    merged = merge_branches(expanded)

    plain = layer_report(build_model("mini_xception"))
    report = layer_report(merged)
    assert (report.parameters, report.trainable_parameters) == (58_423, 56_951) == (plain.parameters,
                                                                                   plain.trainable_parameters)
    assert expanded.count_params() == {1: 65_176, 2: 125_060}[branches]  # the training form's branches
    assert [w.shape for w in merged.weights] == [w.shape for w in build_model("mini_xception").weights]

    faces = np.random.default_rng(1).uniform(-1, 1, (8, 48, 48, 1)).astype("float32")
    ours, theirs = _logits(expanded, faces), _logits(merged, faces)
    assert np.abs(ours).max() > 0.5  # not a degenerate, all-zero comparison
    np.testing.assert_allclose(theirs, ours, atol=1e-4 * np.abs(ours).max())


def test_merge_refuses_a_plain_model():
    from edgefer.models import build_model

    with pytest.raises(ValueError, match="not an expanded mini_xception"):
        merge_branches(build_model("mini_xception"))


def test_branches_run_ships_the_plain_model_with_the_selected_accuracy(fer_csv, tmp_path):
    """A --branches run trains the expanded form, resumes it, and writes model.keras merged: 58,423
    parameters scoring exactly the best epoch's validation accuracy. 257 rows: an uneven last batch (4 x 64 + 1)."""
    import keras

    config = config_from_recipe("quick", data=str(fer_csv), limit=257, epochs=2, branches=1,
                                project=str(tmp_path), name="rep")

    def interrupt(row, improved):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, on_epoch=interrupt, verbose=0, log=lambda *_: None)
    run = tmp_path / "rep"
    assert keras.saving.load_model(run / "weights/last.keras").name == "mini_xception_expanded"
    result = resume(run, verbose=0, log=lambda *_: None)

    shipped = keras.saving.load_model(run / "weights/model.keras", compile=False)
    assert shipped.name == "mini_xception" and shipped.count_params() == 58_423
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["parameters"] == 58_423 and metrics["trained_parameters"] > 65_000 and metrics["branches"] == 1
    history = read_history(run / "history.csv")
    assert [row["epoch"] for row in history] == [1, 2]
    best = max(row["val_accuracy"] for row in history)
    assert result.metrics["PublicTest"]["accuracy"] == pytest.approx(best, abs=1e-9)

    from edgefer.data import read_fer_csv

    val = read_fer_csv(fer_csv, "PublicTest", limit=257)
    expanded = keras.saving.load_model(run / "weights/best.keras", compile=False)
    np.testing.assert_allclose(predict_probabilities(shipped, val.images),
                               predict_probabilities(expanded, val.images), atol=1e-5)


@pytest.mark.parametrize("options, message", [
    (dict(model="vgg"), "--branches applies to mini_xception only, not 'vgg'"),
    (dict(init_weights="some.keras"), "--branches starts from random weights"),
    (dict(branches=-1), "--branches -1: expected a value >= 0"),
])
def test_bad_branch_options_fail_before_any_data_is_read(options, message):
    values = dict(data="missing.csv", branches=2) | options
    with pytest.raises(ValueError, match=message):
        config_from_recipe("quick", **values)
