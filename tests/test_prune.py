"""edgefer prune: channel groups, exact removal and merging, the importance formula, the pruning loop."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from edgefer.prune.channels import Merge, channel_graph, pad_channels, remove_channels
from edgefer.cli import app
from edgefer.models import build_model
from edgefer.prune import PruneConfig, run_prune
from edgefer.prune.criteria import kernel_importance, propose_angle, propose_kernel, propose_zero


def _faces(count=64, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 48, 48), dtype=np.uint8)


def _inputs(faces: np.ndarray) -> np.ndarray:
    return (faces.astype("float32") / 127.5 - 1.0)[..., None]


def _silence_bn_channel(model, layer_name: str, channel: int) -> None:
    layer = model.get_layer(layer_name)
    gamma, beta, mean, variance = layer.get_weights()
    gamma[channel], beta[channel] = 0.0, 0.0
    layer.set_weights([gamma, beta, mean, variance])


def test_mini_xception_groups_tie_residual_channels():
    graph = channel_graph(build_model("mini_xception"))
    residual = graph.groups["block2_sepconv2"]
    assert set(residual.producers) == {"block2_sepconv2", "block2_shortcut"}
    assert {c.layer for c in residual.consumers} == {"block3_sepconv1", "block3_shortcut"}
    assert graph.groups["head_conv"].fixed and not graph.groups["head_conv"].prunable
    assert len(graph.prunable()) == 10  # 2 stem convs + (inner, residual) x 4 blocks


def test_removing_dead_channels_is_exact_and_shrinks_the_model():
    model = build_model("mini_xception")
    _silence_bn_channel(model, "stem_bn1", 2)
    for name in ("block2_bn2", "block2_shortcut_bn"):  # both sides of the residual Add
        _silence_bn_channel(model, name, 5)
    faces = _faces()

    proposal = propose_zero(model, channel_graph(model), faces, count=10)
    assert proposal.removals == {"stem_conv1": [2], "block2_sepconv2": [5]}

    pruned = remove_channels(model, proposal.removals)
    # stem_conv1 loses 9 kernel weights, 2 BN pairs... count what really went: every weight tied to a channel
    assert pruned.count_params() == model.count_params() - (9 + 4 + 9 * 8) - (32 + 4 + 16 + 4 + 9 + 64 + 64)
    np.testing.assert_allclose(pruned.predict(_inputs(faces), verbose=0), model.predict(_inputs(faces), verbose=0),
                               atol=1e-5)


def test_zero_channels_round_pruned_widths_up_without_changing_outputs():
    model = build_model("mini_xception")
    rng = np.random.default_rng(1)
    for layer in model.layers:  # non-trivial batch-norm statistics, so padding has something to get wrong
        if type(layer).__name__ == "BatchNormalization":
            shape = layer.get_weights()[0].shape
            layer.set_weights([rng.normal(1, 0.2, shape), rng.normal(0, 0.2, shape), rng.normal(0, 0.2, shape),
                               rng.uniform(0.5, 2.0, shape)])
    pruned = remove_channels(model, {"stem_conv1": [2], "block2_sepconv2": [5, 9], "block3_sepconv1": [0]})
    padded = pad_channels(pruned, 8)
    widths = {group.name: group.width for group in channel_graph(padded).prunable()}
    assert (widths["stem_conv1"], widths["block2_sepconv2"], widths["block3_sepconv1"]) == (8, 32, 64)
    assert all(width % 8 == 0 for width in widths.values())
    assert padded.count_params() > pruned.count_params()
    faces = _inputs(_faces())
    np.testing.assert_allclose(padded.predict(faces, verbose=0), pruned.predict(faces, verbose=0), atol=1e-6)
    assert pad_channels(model, 8) is model  # already multiples of 8: nothing to do
    with pytest.raises(ValueError, match="channel multiple must be >= 1, got 0"):
        pad_channels(model, 0)


def test_merging_parallel_units_preserves_outputs():
    import keras

    keras.utils.set_random_seed(0)  # the untrained net's chance near-parallel pairs must not depend on test order
    model = build_model("cnn")
    fc1 = model.get_layer("fc1")
    kernel, bias = fc1.get_weights()
    bias[3] = abs(bias[3]) + 5.0  # live on every face (an untrained unit may never fire on random faces)
    kernel[:, 7], bias[7] = 2.0 * kernel[:, 3], 2.0 * bias[3]  # relu(2z) = 2 relu(z): unit 7 = 2 x unit 3
    fc1.set_weights([kernel, bias])
    faces = _faces()

    # random faces make a few more near-parallel pairs in an untrained net; ours must be among them
    proposal = propose_angle(model, channel_graph(model), faces, count=20, limit_degrees=15.0)
    merge = next(m for m in proposal.merges if {m.keep, m.drop} == {3, 7})
    assert (merge.group, merge.keep, merge.drop) == ("fc1", 7, 3)  # the weaker of the two goes
    assert merge.alpha == pytest.approx(0.5, rel=1e-4) and merge.beta == pytest.approx(0.0, abs=1e-4)

    pruned = remove_channels(model, {"fc1": [3]}, [merge])
    assert pruned.get_layer("fc1").units == 499
    np.testing.assert_allclose(pruned.predict(_inputs(faces), verbose=0), model.predict(_inputs(faces), verbose=0),
                               atol=1e-5)
    with pytest.raises(ValueError, match="depthwise"):
        remove_channels(build_model("mini_xception"), {"block1_sepconv1": [1]},
                        [Merge("block1_sepconv1", 0, 1, 1.0, 0.0)])


def test_kernel_importance_follows_the_study_formula():
    cnn = build_model("cnn")
    kernel = cnn.get_layer("conv2").get_weights()[0]  # 5x5x32 filters, no BN after them
    expected = np.sqrt((kernel.astype(np.float64) ** 2).sum(axis=(0, 1, 2)) / 25)
    np.testing.assert_allclose(kernel_importance(cnn)["conv2"], expected, rtol=1e-6)

    model = build_model("mini_xception")
    bn = model.get_layer("block1_shortcut_bn")
    gamma, beta, mean, variance = bn.get_weights()
    bn.set_weights([gamma * 3.0, beta, mean, variance])
    main = model.get_layer("block1_sepconv2").get_weights()[1][0, 0]          # pointwise: k = 1
    side = model.get_layer("block1_shortcut").get_weights()[0][0, 0]          # 1x1 conv: k = 1
    main_scale = 1 / np.sqrt(1 + model.get_layer("block1_bn2").epsilon)
    side_scale = 3.0 / np.sqrt(1 + bn.epsilon)
    expected = np.sqrt((main ** 2).sum(0) * main_scale ** 2 + (side ** 2).sum(0) * side_scale ** 2)
    np.testing.assert_allclose(kernel_importance(model)["block1_sepconv2"], expected, rtol=1e-5)


def test_prune_run_shrinks_a_trained_model_that_still_exports(trained_model, fer_csv, tmp_path):
    from edgefer.convert.export import export_model
    from edgefer.runtime import load_classifier

    config = PruneConfig(str(trained_model), str(fer_csv), ("zero", "kernel"), step=8, max_steps=3, threshold=1.0,
                         limit=600, project=str(tmp_path), name="p")
    result = run_prune(config, log=lambda *_: None)

    kept = [row for row in result.rows if row.kept]
    assert [row.step for row in kept] == [0, 1, 2, 3]
    assert kept[-1].parameters < kept[0].parameters - 3 * 8 * 10
    assert kept[-1].keras_kb < kept[0].keras_kb
    assert result.stop_reason == "reached --max-steps 3"
    for name in ("steps.csv", "steps.md", "steps.png", "summary.json"):
        assert (result.run_dir / name).stat().st_size > 0
    assert result.summary["parameters"]["after"] == kept[-1].parameters

    with pytest.warns(UserWarning, match="calibrating int8 on 100 images"):
        rows, _ = export_model(result.model_path, tmp_path / "export", ["int8", "onnx"], str(fer_csv),
                                    calibration=100, limit=300, threshold=5.0, log=lambda *_: None)
    assert [row.status for row in rows if row.format in ("int8", "onnx")] == ["ok", "ok"]
    import onnx

    onnx_row = next(row for row in rows if row.format == "onnx")
    assert onnx_row.top1_agreement == 1.0  # zero channels padded in for ONNX Runtime change no prediction
    convs = [node for node in onnx.load(onnx_row.file).graph.node if node.op_type == "Conv"]
    initializers = {init.name: init.dims for init in onnx.load(onnx_row.file).graph.initializer}
    widths = [initializers[node.input[1]][0] for node in convs if node.input[1] in initializers]
    assert widths and all(width % 8 == 0 or width == 7 for width in widths), widths  # 7: the class head
    classifier = load_classifier(next(row for row in rows if row.format == "int8").file)
    probabilities = classifier.predict(_faces(5))
    assert probabilities.shape == (5, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=0.02)


def test_prune_stops_and_undoes_the_step_that_breaks_the_threshold(trained_model, fer_csv, tmp_path):
    config = PruneConfig(str(trained_model), str(fer_csv), ("kernel",), metric="accuracy", threshold=0.0,
                         step=64, limit=400, project=str(tmp_path), name="strict")
    result = run_prune(config, log=lambda *_: None)
    assert not result.rows[-1].kept
    assert "accuracy fell more than 0.0" in result.stop_reason
    import keras

    saved = keras.saving.load_model(result.model_path, compile=False)
    assert saved.count_params() == [r for r in result.rows if r.kept][-1].parameters


@pytest.mark.parametrize("option, message", [
    (["--criterion", "kernel,magnitude"], "--criterion: unknown magnitude"),
    (["--threshold", "-1"], "Invalid value for '--threshold'"),          # declared ranges: click's check
    (["--target-fraction", "1.5"], "--target-fraction 1.5: expected a value > 0 and < 1"),
])
def test_prune_cli_rejects_bad_options(trained_model, fer_csv, tmp_path, option, message):
    result = CliRunner().invoke(app, ["prune", str(trained_model), "--data", str(fer_csv), "--project",
                                      str(tmp_path), *option])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_prune_cli_names_a_missing_model(fer_csv, tmp_path):
    result = CliRunner().invoke(app, ["prune", str(tmp_path / "nope.keras"), "--data", str(fer_csv)])
    assert result.exit_code == 2 and "nope.keras: model file not found" in result.output


def test_layer_rank_thins_every_layer_in_proportion():
    cnn = build_model("cnn")
    graph = channel_graph(cnn)
    everywhere = propose_kernel(cnn, graph, count=20, rank="global")
    assert set(everywhere.removals) == {"conv1"}  # raw sqrt(sum w^2 / 25) of 5x5x1 filters is the smallest
    relative = propose_kernel(cnn, graph, count=20, rank="layer")
    assert len(relative.removals) >= 2 and relative.count == 20  # no longer only the first conv
