"""Distillation: soft targets, the pipeline feeding them, a student trained from an edgefer teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgefer.cli import app
from edgefer.train.distillation import load_teacher, soft_targets, soften, teacher_probabilities
from edgefer.train.pipeline import NO_AUGMENT, make_train_dataset
from edgefer.train import TrainConfig, config_from_recipe, train


def test_soft_targets_mix_labels_with_softened_teacher():
    teacher = np.array([[0.7, 0.2, 0.1, 0, 0, 0, 0], [0.05, 0.05, 0.1, 0.6, 0.1, 0.05, 0.05]])
    labels = np.array([0, 4])
    np.testing.assert_allclose(soften(teacher, 1.0), teacher, atol=1e-9)
    hot = soften(teacher, 4.0)
    assert hot[0, 1] > teacher[0, 1] and hot[0, 0] < teacher[0, 0]  # a higher temperature spreads the mass
    targets = soft_targets(labels, teacher, weight=0.5, temperature=1.0)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(targets[1], 0.5 * np.eye(7)[4] + 0.5 * teacher[1], atol=1e-6)
    np.testing.assert_array_equal(soft_targets(labels, teacher, 0.0, 2.0), np.eye(7)[labels])
    with pytest.raises(ValueError, match="--distill-weight 1.5: expected a number in"):
        soft_targets(labels, teacher, 1.5, 2.0)
    with pytest.raises(ValueError, match="--distill-temperature 0"):
        soften(teacher, 0)


def test_pipeline_feeds_each_face_its_own_target():
    count = 64
    images = np.repeat(np.arange(count, dtype=np.uint8), 48 * 48).reshape(count, 48, 48)  # face i is all i
    labels = np.arange(count) % 7
    targets = np.random.default_rng(0).dirichlet(np.ones(7), count).astype(np.float32)
    x, y = next(iter(make_train_dataset(images, labels, count, NO_AUGMENT, seed=3, targets=targets)))
    rows = np.rint((np.asarray(x)[:, 0, 0, 0] + 1.0) * 127.5).astype(int)
    assert sorted(rows) == list(range(count))  # shuffled, every face once
    np.testing.assert_allclose(np.asarray(y), targets[rows], atol=1e-6)


def test_student_trains_from_an_edgefer_teacher(trained_model, fer_csv, tmp_path):
    logs = []
    config = config_from_recipe("quick", data=str(fer_csv), limit=640, epochs=1, project=str(tmp_path), name="s",
                                teacher=[str(trained_model)], distill_weight=0.7, distill_temperature=3.0)
    result = train(config, verbose=0, log=logs.append)
    assert any("distilling from" in line and "weight 0.7, temperature 3.0" in line for line in logs)
    assert json.loads((result.run_dir / "args.json").read_text())["teacher"] == [str(trained_model)]
    assert json.loads((result.run_dir / "metrics.json").read_text())["teacher"] == [str(trained_model)]
    assert result.epochs_run == 1


def test_an_ensemble_of_teachers_averages_their_flip_averaged_probabilities(trained_model, fer_val):
    from edgefer.models import build_model, load_face_model

    images = fer_val.images[:64]
    trained, untrained = load_face_model(trained_model), build_model("mini_xception")
    one, other = teacher_probabilities([trained], images), teacher_probabilities([untrained], images)
    np.testing.assert_allclose(teacher_probabilities([trained, untrained], images), (one + other) / 2, atol=1e-5)
    np.testing.assert_allclose(one.sum(axis=1), 1.0, atol=1e-5)
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    np.testing.assert_allclose(teacher_probabilities([trained], mirrored), one, atol=1e-5)  # flip-invariant by design


def test_old_runs_with_a_single_teacher_still_resume():
    assert TrainConfig.from_dict({"teacher": "t.keras"}).teacher == ["t.keras"]
    assert TrainConfig.from_dict({"teacher": None}).teacher == []


def test_bad_teacher_is_named(fer_csv, tmp_path):
    result = CliRunner().invoke(app, ["train", "--data", str(fer_csv), "--teacher", str(tmp_path / "t.keras"),
                                      "--project", str(tmp_path)])
    assert result.exit_code == 2 and "--teacher" in result.output and "t.keras: model file not found" in result.output
    from edgefer.models import build_model

    wrong = tmp_path / "big.keras"
    build_model("mini_xception", input_size=64).save(wrong)
    with pytest.raises(ValueError, match="expected \\(None, 48, 48, 1\\)"):
        load_teacher(wrong, 48)
