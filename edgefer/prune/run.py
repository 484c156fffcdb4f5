"""`edgefer prune`: the seed study's structured pruning, removing real filters and units.

Criteria, applied in the order given, each until it has nothing left or the model got too much worse:

kernel  importance I = sqrt(1/k^2 * sum(w^2)) of each output filter (k x k kernel; 1 for separable
        pointwise filters and dense units). A BatchNormalization right after a producer makes its raw
        weights scale-free, so the BN scale |gamma|/sqrt(var + eps) is folded in first. Channels tied by
        an addition are one unit, with I = sqrt(sum over producers of I^2). Least important first.
angle   hidden units whose centred activation vectors over training faces are nearly parallel or
        opposite (angle under 15 or over 165 degrees): the weaker one is removed and merged into the
        other by least squares (b ~ alpha*a + beta), its consumers' weights absorbing alpha and beta.
        Only for groups consumed by dense or full convolutions (a depthwise conv cannot absorb a merge).
zero    units whose output is zero on every training face.

After each step the batch-norm statistics are recomputed, the model is optionally fine-tuned, and the
step is kept unless the validation loss rose more than `threshold` above the unpruned model's (or the
accuracy fell by more than `threshold`, with --metric accuracy); the first rejected step ends the run.

Run directory (runs/prune/<name>/): weights/pruned.keras, steps.csv, steps.md, steps.png, summary.json.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edgefer.data import DataSpec, FaceSet, is_csv, load_split
from edgefer.files import atomic_path, model_label, new_run_dir, write_json
from edgefer.metrics import compute_metrics
from edgefer.models import load_face_model
from edgefer.prune.channels import remove_channels
from edgefer.prune.config import PruneConfig, PruneResult, StepRow
from edgefer.prune.criteria import propose
from edgefer.prune.report import summarise, write_reports
from edgefer.runtime.keras import predict_probabilities


def score(model, faces: FaceSet) -> tuple[float, float]:
    metrics = compute_metrics(predict_probabilities(model, faces.images), faces.labels)
    return metrics.loss, metrics.accuracy


def keras_size_kb(model) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.stat().st_size / 1024


def finetune(model, train: FaceSet, epochs: int, lr: float, batch_size: int, seed: int):
    import keras

    from edgefer.train.pipeline import AugmentConfig, make_train_dataset, steps_per_epoch

    model.compile(optimizer=keras.optimizers.Adam(lr), loss=keras.losses.CategoricalCrossentropy(),
                  metrics=["accuracy"])
    dataset = make_train_dataset(train.images, train.labels, batch_size, AugmentConfig(), seed, endless=True)
    model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch(len(train), batch_size), verbose=0,
              shuffle=False)
    # a fresh copy without the optimizer: saved files hold weights only, as a trained model.keras does
    plain = keras.Model.from_config(model.get_config())
    plain.set_weights(model.get_weights())
    return plain


def _worse_than_allowed(config: PruneConfig, base: tuple[float, float], now: tuple[float, float]) -> bool:
    if config.metric == "loss":
        return now[0] - base[0] > config.threshold
    return base[1] - now[1] > config.threshold


def _settle(model, train: FaceSet, calibration: np.ndarray, epochs: int, config: PruneConfig, seed: int):
    """Fine-tune (if asked), then recompute batch-norm statistics for the new channel layout."""
    from edgefer.train.keras_utils import recalibrate_batchnorm

    if epochs:
        model = finetune(model, train, epochs, config.finetune_lr, config.batch_size, seed)
    recalibrate_batchnorm(model, calibration)
    return model


def run_prune(config: PruneConfig, log=print) -> PruneResult:
    config.validate()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # every pruned model retraces predict once
    original = load_face_model(config.model, "prune")
    train, val = _load_data(config, log)
    run_dir = new_run_dir(config.project, config.name or model_label(config.model))
    write_json(run_dir / "args.json", asdict(config))
    order = np.random.default_rng(config.seed).permutation(len(train))
    calibration = train.images[order[: config.calibration_faces]]
    probe_faces = train.images[order[: config.activation_faces]]

    base = score(original, val)
    started = time.perf_counter()
    rows = [StepRow(0, "-", "(unpruned)", 0, float("nan"), base[0], base[1], int(original.count_params()),
                    keras_size_kb(original), True, 0.0)]
    log(f"unpruned: loss {base[0]:.4f}, accuracy {base[1]:.4f}, {rows[0].parameters:,} parameters")
    model, reason = original, "every criterion ran out of candidates"
    target = config.target_fraction * rows[0].parameters if config.target_fraction else None
    for criterion in config.criteria:
        reason, model = _prune_with(criterion, model, config, train, val, base, calibration, probe_faces,
                                    rows, target, started, log)
        if reason != "exhausted":
            break
    if reason == "exhausted":
        reason = "every criterion ran out of candidates"
    if config.finetune_epochs:
        model = _settle(model, train, calibration, config.finetune_epochs, config, config.seed + 10_000)
        loss, accuracy = score(model, val)
        rows.append(StepRow(rows[-1].step + 1, "finetune", f"{config.finetune_epochs} epochs", 0, float("nan"),
                            loss, accuracy, int(model.count_params()), keras_size_kb(model), True,
                            time.perf_counter() - started))
    model_path = run_dir / "weights" / "pruned.keras"
    with atomic_path(model_path) as temp:
        model.save(temp)
    summary = summarise(config, rows, reason, model_path)
    write_reports(run_dir, rows, summary)
    log(f"stopped: {reason}")
    return PruneResult(run_dir, model_path, rows, reason, summary)


def _prune_with(criterion, model, config, train, val, base, calibration, probe_faces, rows, target, started,
                log):
    while True:
        if config.max_steps is not None and rows[-1].step >= config.max_steps:
            return f"reached --max-steps {config.max_steps}", model
        if target is not None and rows[-1].parameters <= target:
            return f"reached --target-fraction {config.target_fraction}", model
        proposal = propose(criterion, model, probe_faces, config)
        if proposal is None:
            return "exhausted", model
        candidate = remove_channels(model, proposal.removals, proposal.merges)
        candidate = _settle(candidate, train, calibration, config.step_finetune_epochs, config,
                            config.seed + rows[-1].step)
        loss, accuracy = score(candidate, val)
        kept = not _worse_than_allowed(config, base, (loss, accuracy))
        row = StepRow(rows[-1].step + 1, criterion, proposal.describe(), proposal.count, proposal.statistic,
                      loss, accuracy, int(candidate.count_params()),
                      keras_size_kb(candidate) if kept else float("nan"), kept, time.perf_counter() - started)
        rows.append(row)
        log(f"step {row.step:4d} {criterion:6s} -{row.units_removed} ({row.removed}): loss {loss:.4f}, "
            f"accuracy {accuracy:.4f}, {row.parameters:,} parameters" + ("" if kept else "  (rejected)"))
        if not kept:
            what = "loss rose" if config.metric == "loss" else "accuracy fell"
            return f"{what} more than {config.threshold} at step {row.step} (that step is undone)", model
        model = candidate


def _load_data(config: PruneConfig, log) -> tuple[FaceSet, FaceSet]:
    spec = DataSpec(config.data, config.train_split, config.val_split, None, seed=config.seed,
                    limit=config.limit, size=48)
    names = (config.train_split, config.val_split) if is_csv(config.data) else ("train", "val")
    train, val = load_split(spec, names[0]), load_split(spec, names[1])
    log(f"data: {len(train)} train / {len(val)} validation faces")
    return train, val
