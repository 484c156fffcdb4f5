"""Stochastic weight averaging: the running mean itself, and a real averaged second schedule with resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefer.train.averaging import WeightAverage
from edgefer.train import TrainConfig, config_from_recipe, read_history, resume, train
from edgefer.train.config import folds_into_average
from edgefer.train.keras_utils import current_lr, make_optimizer


def test_running_mean_matches_numpy_and_survives_a_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    snapshots = [[rng.normal(size=(3, 4)).astype(np.float32), np.array([k], dtype=np.int64)] for k in range(5)]
    average = WeightAverage()
    for snapshot in snapshots:
        average.add(snapshot)
    assert average.count == 5
    expected = np.mean([s[0].astype(np.float64) for s in snapshots], axis=0)
    np.testing.assert_allclose(average.mean[0], expected, rtol=1e-12)
    assert average.mean[1].tolist() == [4]  # integer state is not averaged: the latest value is kept
    as_model = average.weights_like(snapshots[0])
    assert [w.dtype for w in as_model] == [np.float32, np.int64]

    loaded = WeightAverage.load(average.save(tmp_path / "swa.npz"))
    assert loaded.count == 5 and all(np.array_equal(a, b) for a, b in zip(loaded.mean, average.mean))
    with pytest.raises(ValueError, match=r"weight 0: the average is \(3, 4\), the snapshot \(4, 3\)"):
        loaded.add([np.zeros((4, 3), np.float32), np.zeros(1, np.int64)])


def test_swa_recipe_needs_a_trained_model(fer_csv):
    with pytest.raises(ValueError, match="recipe 'swa' needs --weights PATH"):
        config_from_recipe("swa", data=str(fer_csv))


def test_cyclic_schedule_restarts_and_the_average_takes_each_cycles_end():
    config = TrainConfig(lr=1e-3, schedule="cyclic", cycle_epochs=2, min_lr=1e-6, swa_start=2)
    optimizer = make_optimizer(config, steps=10)
    rates = []
    for step in (0, 10, 19, 20):
        optimizer.iterations.assign(step)
        rates.append(current_lr(optimizer))
    assert rates[0] == pytest.approx(1e-3) and rates[3] == pytest.approx(1e-3)  # restarts every 2 epochs
    assert rates[2] < 1e-4 < rates[1] < rates[0]
    assert [epoch for epoch in range(1, 9) if folds_into_average(config, epoch)] == [2, 4, 6, 8]
    constant = TrainConfig(schedule="constant", swa_start=3)
    assert [epoch for epoch in range(1, 6) if folds_into_average(constant, epoch)] == [3, 4, 5]
    with pytest.raises(ValueError, match="schedule 'cyclic' needs --cycle-epochs >= 1, got 0"):
        make_optimizer(TrainConfig(schedule="cyclic"), steps=10)
    with pytest.raises(ValueError, match="schedule 'cyclic' needs --cycle-epochs >= 1, got 0"):
        config_from_recipe("best", data="x.csv", schedule="cyclic")
    with pytest.raises(ValueError, match="--schedule step: expected one of plateau, cosine, cyclic, constant"):
        config_from_recipe("best", data="x.csv", schedule="step")
    with pytest.raises(ValueError, match="--swa-start -1: expected a value >= 0"):
        config_from_recipe("best", data="x.csv", swa_start=-1)


def test_weight_averaged_schedule_averages_every_epoch_across_a_resume(trained_model, fer_csv, tmp_path):
    """Epoch 1, then --resume for epoch 2: the stored average is exactly the mean of both epochs' weights."""
    import keras

    config = config_from_recipe("swa", data=str(fer_csv), limit=640, epochs=1, init_weights=str(trained_model),
                                project=str(tmp_path), name="swa")
    assert (config.schedule, config.swa_start) == ("constant", 1)
    first = train(config, verbose=0, log=lambda *_: None)
    after_one = keras.saving.load_model(first.run_dir / "weights/last.keras").get_weights()

    logs = []
    result = resume(first.run_dir, verbose=0, log=logs.append, epochs=2)
    assert any("weight average of 1 epochs restored" in line for line in logs), logs
    after_two = keras.saving.load_model(result.run_dir / "weights/last.keras").get_weights()
    average = WeightAverage.load(result.run_dir / "weights/swa.npz")
    assert average.count == 2
    for mean, one, two in zip(average.mean, after_one, after_two):
        if np.issubdtype(one.dtype, np.floating):
            np.testing.assert_allclose(mean, (one.astype(np.float64) + two) / 2, rtol=1e-6, atol=1e-7)

    history = read_history(result.run_dir / "history.csv")
    assert [row["epoch"] for row in history] == [1, 2]
    # one snapshot: the average is that epoch (equal accuracy); two: a model of its own
    assert history[0]["swa_val_accuracy"] == pytest.approx(history[0]["val_accuracy"], abs=1e-9)
    assert 0.2 < history[1]["swa_val_accuracy"] < 1
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    best = max(max(row["val_accuracy"], row["swa_val_accuracy"]) for row in history)
    assert metrics["splits"]["PublicTest"]["accuracy"] == pytest.approx(best, abs=1e-6)
    shipped = keras.saving.load_model(result.run_dir / "weights/model.keras").get_weights()
    kernel = int(np.argmax([w.size for w in shipped]))  # the largest kernel: averaged or not
    picked_average = np.allclose(shipped[kernel], average.mean[kernel], atol=1e-6)
    assert picked_average == metrics["best_is_average"]
