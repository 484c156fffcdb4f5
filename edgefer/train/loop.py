"""`edgefer train`: the training loop around keras.Model.fit, checkpoints and resume.

Run directory layout (runs/train/<name>/):
    args.json          resolved configuration (what --resume reloads)
    weights/last.keras last epoch, with optimizer state (for --resume)
    weights/best.keras best epoch on the validation split (with optimizer state)
    weights/model.keras the best epoch without optimizer state: the file to export and ship
    weights/swa.npz    the running weight average when --swa-start is set (what --resume continues)
    state.json         epoch counter, best score, plateau and early-stopping counters
    history.csv        one row per epoch
    metrics.json       final metrics of best.keras on each split
    curves.png, confusion_<split>.png

Input pipeline trap: `fit` is fed one endless tf.data iterator for the whole run; a fresh iterator per
epoch stalled about half of the epochs by ~35 s on a wait for tf.data's pool threads.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from edgefer.data import FaceSet, is_csv, load_split
from edgefer.errors import EdgeferError
from edgefer.files import new_run_dir, read_json, write_json
from edgefer.machine import machine_description
from edgefer.metrics import compute_metrics
from edgefer.plots import plot_confusion, plot_history
from edgefer.runtime.keras import predict_probabilities
from edgefer.tfenv import configure_tensorflow
from edgefer.train import distribute
from edgefer.train.averaging import WeightAverage
from edgefer.train.config import TrainConfig, check_config, check_schedule
from edgefer.train.history import read_history
from edgefer.train.keras_utils import copy_weights, current_lr, make_optimizer, save_model
from edgefer.train.pipeline import NO_AUGMENT, AugmentConfig, class_weights, make_train_dataset, steps_per_epoch
from edgefer.train.results import LoopState, TrainResult


def training_machine() -> dict:
    """The host (cores, memory, platform) plus the accelerators the Keras backend trains on."""
    import keras

    backend, found = keras.backend.backend(), []
    if backend == "jax":
        import jax

        found = [device.device_kind for device in jax.devices() if device.platform != "cpu"]
    elif backend == "tensorflow":
        import tensorflow as tf

        found = [device.name for device in tf.config.list_physical_devices("GPU")]
    return {**machine_description(), "accelerators": found}


def train(config: TrainConfig, log=print, on_epoch=None, verbose: int = 1) -> TrainResult:
    """Train a registered model per `config` in a new run directory (made only once the data has loaded)."""
    if not config.data:
        raise EdgeferError("no training data: pass --data PATH (a FER-2013 CSV or an image folder)")
    from edgefer.files import check_run_name, check_writable_folder
    from edgefer.train.sharpness import check_rho

    check_config(config)
    distribute.check_backend(config)
    check_rho(config.sam_rho)
    check_run_name(config.name or config.model)
    check_writable_folder(config.project)
    if config.teacher:
        from edgefer.train.distillation import check_options

        check_options(config.distill_weight, config.distill_temperature)
    for option, path in [("--weights", config.init_weights)] + [("--teacher", path) for path in config.teacher]:
        if path and not Path(path).is_file():  # fail before the data is read and a run directory is made
            raise FileNotFoundError(f"{option} {path}: model file not found (expected a .keras file)")
    # the run records absolute paths: `--resume` and `evaluate RUN` from another folder find the same files
    config = dataclasses.replace(
        config, data=_absolute(config.data), init_weights=config.init_weights and _absolute(config.init_weights),
        teacher=[_absolute(t) for t in config.teacher])
    splits = _load_splits(config, log)
    steps_per_epoch(len(splits[0]), config.batch_size)   # a batch larger than the data fails here, not later
    if distribute.process_index(config) > 0:
        return _fit_elsewhere(config, None, LoopState(), splits, log, on_epoch, verbose)
    run_dir = new_run_dir(config.project, config.name or config.model)
    write_json(run_dir / "args.json", config.to_dict())
    log(f"run directory {run_dir} (if interrupted: edgefer train --resume {run_dir})")
    try:
        return _fit(config, run_dir, LoopState(), splits, log, on_epoch, verbose)
    except KeyboardInterrupt as stop:
        stop.run_dir = run_dir   # so the caller can say which run to resume
        raise


def _fit_elsewhere(config: TrainConfig, run_dir: Path | None, state: LoopState, splits, log, on_epoch,
                   verbose) -> TrainResult:
    """A multi-host job's process > 0: process 0 alone writes the run; this one trains in a temp folder (a copy
    of `run_dir` when resuming, so it continues from the same checkpoint, history and averages)."""
    import shutil
    import tempfile

    process = distribute.process_index(config)
    scratch = Path(tempfile.mkdtemp(prefix=f"edgefer-process{process}-"))
    try:
        if run_dir is not None:
            shutil.copytree(run_dir, scratch / "run")
            log(f"process {process}: resuming from {run_dir}; process 0 writes the run directory")
        else:
            (scratch / "run").mkdir()
            log(f"process {process}: training; process 0 writes the run directory")
        result = _fit(config, scratch / "run", state, splits, log, on_epoch, verbose)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dataclasses.replace(result, run_dir=None, best_model=None, model_path=None)


def _absolute(path: str) -> str:
    return str(Path(path).resolve()) if Path(path).exists() else path


RESUME_CHANGES = ("epochs", "clean_epochs", "coordinator", "num_processes", "process_id")


def resume(run_dir: str | os.PathLike, log=print, on_epoch=None, verbose: int = 1, **changes):
    """Continue an interrupted run from weights/last.keras with its optimizer and schedule state.
    `epochs` and `clean_epochs` change the run's length and its augmentation-free tail (args.json is updated);
    `coordinator`, `num_processes` and `process_id` resume a multi-host run: every process reads the run directory
    process 0 writes (a shared file system, or a copy), and process 0 alone writes."""
    run_dir = Path(run_dir)
    args_path, state_path = run_dir / "args.json", run_dir / "state.json"
    if not args_path.is_file():
        elsewhere = " on this host: every process of a multi-host run reads the run directory process 0 writes " \
            "(a shared file system, or a copy of it)" if changes.get("process_id") else ""
        raise FileNotFoundError(f"--resume {run_dir}: not a training run (no args.json){elsewhere}")
    unknown = sorted(set(changes) - set(RESUME_CHANGES))
    if unknown:
        raise TypeError(f"resume() cannot change {unknown[0]} (only {', '.join(RESUME_CHANGES)})")
    config = TrainConfig.from_dict(read_json(args_path))
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:
        config = dataclasses.replace(config, **changes)
        check_schedule(config)
    state = LoopState(**read_json(state_path)) if state_path.exists() else LoopState()
    last = run_dir / "weights" / "last.keras"
    if state.epoch > 0 and not last.is_file():
        raise FileNotFoundError(f"--resume {run_dir}: state.json says {state.epoch} epoch(s) are done but "
                                f"{last} is missing; nothing was changed (start a new run, or restore the file)")
    splits = _load_splits(config, log)
    if distribute.process_index(config) > 0:
        return _fit_elsewhere(config, run_dir, state, splits, log, on_epoch, verbose)
    if changes:
        write_json(args_path, config.to_dict())
    return _fit(config, run_dir, state, splits, log, on_epoch, verbose)


def _load_splits(config: TrainConfig, log) -> tuple[FaceSet, FaceSet, FaceSet | None]:
    spec = config.data_spec()
    started = time.perf_counter()
    if is_csv(config.data):
        names = (config.train_split, config.val_split, config.test_split)
    else:  # an image folder: the stratified parts
        names = ("train", "val", "test" if config.test_fraction > 0 else None)
    train_set, val_set = load_split(spec, names[0]), load_split(spec, names[1])
    test_set = load_split(spec, names[2]) if names[2] else None
    for faces in (train_set, val_set, test_set):
        for note in faces.notes if faces else []:
            log(note)
    log(f"data: {len(train_set)} train / {len(val_set)} val"
        + (f" / {len(test_set)} test" if test_set else "") + f" images ({time.perf_counter() - started:.1f} s)")
    return train_set, val_set, test_set


def _fit(config: TrainConfig, run_dir: Path, state: LoopState, splits, log, on_epoch, verbose) -> TrainResult:
    configure_tensorflow()
    steps = steps_per_epoch(len(splits[0]), config.batch_size)
    parallel = distribute.setup(config, log)
    try:
        return _fit_on_devices(config, run_dir, state, splits, steps, parallel, log, on_epoch, verbose)
    finally:
        distribute.teardown()


def _fit_on_devices(config, run_dir, state, splits, steps, parallel, log, on_epoch, verbose) -> TrainResult:
    import keras

    from edgefer.train.callbacks import EpochEnd, RunProgress
    from edgefer.train.sharpness import enable_sharpness_aware

    train_set, val_set, test_set = splits
    keras.utils.set_random_seed(config.seed + state.epoch)
    last = run_dir / "weights" / "last.keras"
    if state.epoch > 0 and last.exists():
        model = keras.saving.load_model(last)
        log(f"resumed {run_dir} at epoch {state.epoch} (lr {current_lr(model.optimizer):.2e})")
    else:
        state = LoopState()
        model = _build_training_model(config, log)
        if config.init_weights:
            copy_weights(config.init_weights, model)
            log(f"initial weights from {config.init_weights}")
        model.compile(
            optimizer=make_optimizer(config, steps),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
        )
    enable_sharpness_aware(model, config.sam_rho)
    weights = class_weights(train_set.labels) if config.balance_classes else None
    targets = _distillation_targets(config, train_set, val_set, log) if config.teacher else None
    calibration = train_set.images[np.random.default_rng(config.seed).permutation(len(train_set))[:4096]]
    average = _weight_average(config, run_dir, state, log)
    callback = EpochEnd(config, run_dir, state, val_set, calibration, steps, on_epoch, average)
    try:
        for end, augment in training_phases(config):
            if state.epoch >= end:
                continue
            if state.stop_wait >= config.patience:
                break
            if augment is NO_AUGMENT and config.augment != NO_AUGMENT:
                log(f"epochs {state.epoch + 1}-{end} without augmentation (--clean-epochs {config.clean_epochs})")
            dataset = make_train_dataset(train_set.images, train_set.labels, config.batch_size,
                                         augment, config.seed + state.epoch, weights, targets, endless=True,
                                         shard=(parallel.get("process_id", 0), parallel.get("processes", 1)))
            model.fit(dataset, epochs=end, initial_epoch=state.epoch, steps_per_epoch=steps,
                      callbacks=[callback, RunProgress(config.epochs)], shuffle=False, verbose=verbose)
    except KeyboardInterrupt:
        if (run_dir / "weights" / "best.keras").is_file():
            _write_deployable(config, run_dir, log)   # the best epoch so far is usable at once
        raise
    return _finish(config, run_dir, state, val_set, test_set, log, parallel)


def _build_training_model(config: TrainConfig, log):
    from edgefer.models import build_model

    units = None
    if config.branches:
        from edgefer.train.reparam import BranchUnits

        units = BranchUnits(config.branches)
    model = build_model(config.model, config.input_size, l2=config.l2, width=config.width, dropout=config.dropout,
                        units=units)
    if units:
        log(f"re-parameterized training: {model.count_params():,} parameters while training "
            f"({config.branches} branch(es) per convolution), merged into plain {config.model} at the end")
    return model


def training_phases(config: TrainConfig) -> list[tuple[int, AugmentConfig]]:
    """(last epoch, augmentation) of each phase: the recipe's augmentation, then `clean_epochs` without."""
    clean = min(config.clean_epochs, config.epochs)
    if clean <= 0 or config.augment == NO_AUGMENT:
        return [(config.epochs, config.augment)]
    return [(config.epochs - clean, config.augment), (config.epochs, NO_AUGMENT)]


def _weight_average(config: TrainConfig, run_dir: Path, state: LoopState, log):
    if not config.swa_start:
        return None
    stored = run_dir / "weights" / "swa.npz"
    if state.epoch > 0 and stored.exists():
        average = WeightAverage.load(stored)
        log(f"weight average of {average.count} epochs restored from {stored}")
        return average
    when = "at the end of every cycle" if config.schedule == "cyclic" else "of every epoch"
    log(f"averaging the weights {when} from epoch {config.swa_start} on (SWA)")
    return WeightAverage()


def _distillation_targets(config: TrainConfig, train_set: FaceSet, val_set: FaceSet, log) -> np.ndarray:
    from edgefer.train.distillation import load_teacher, soft_targets, teacher_probabilities

    teachers = [load_teacher(path, config.input_size) for path in config.teacher]
    accuracy = compute_metrics(teacher_probabilities(teachers, val_set.images), val_set.labels).accuracy
    what = config.teacher[0] if len(teachers) == 1 else f"an ensemble of {len(teachers)} ({', '.join(config.teacher)})"
    log(f"distilling from {what} (flip-averaged accuracy on {config.val_split}: {accuracy:.4f}), "
        f"weight {config.distill_weight}, temperature {config.distill_temperature}")
    probabilities = teacher_probabilities(teachers, train_set.images)
    return soft_targets(train_set.labels, probabilities, config.distill_weight, config.distill_temperature)


def _write_deployable(config: TrainConfig, run_dir: Path, log):
    """weights/model.keras from best.keras: no optimizer state, branches merged. Returns (model, trained params)."""
    import keras

    model = keras.saving.load_model(run_dir / "weights" / "best.keras", compile=False)
    trained_parameters = int(model.count_params())
    if config.branches:
        from edgefer.train.reparam import merge_branches

        model = merge_branches(model, config.width)
        log(f"merged the {config.branches}-branch training form into plain {config.model} "
            f"({trained_parameters:,} -> {model.count_params():,} parameters)")
    save_model(model, run_dir / "weights" / "model.keras")  # deployable: best weights, no optimizer state
    return model, trained_parameters


def _finish(config, run_dir, state, val_set, test_set, log, parallel: dict) -> TrainResult:
    with distribute.locally():   # the deployable model and its scores, on this process alone
        return _finish_here(config, run_dir, state, val_set, test_set, log, parallel)


def _finish_here(config, run_dir, state, val_set, test_set, log, parallel: dict) -> TrainResult:
    import keras

    best_path = run_dir / "weights" / "best.keras"
    model, trained_parameters = _write_deployable(config, run_dir, log)
    metrics = {}
    for split_name, faces in ((config.val_split, val_set), (config.test_split or "test", test_set)):
        if faces is None:
            continue
        result = compute_metrics(predict_probabilities(model, faces.images), faces.labels)
        metrics[split_name] = result.as_dict()
        plot_confusion(result, run_dir / f"confusion_{split_name}.png",
                       title=f"{config.model} on {split_name}: accuracy {result.accuracy:.3f}")
    history = read_history(run_dir / "history.csv")
    if history:
        plot_history(history, run_dir / "curves.png")
    speed = state.images_seen / state.train_seconds if state.train_seconds else 0.0
    summary = {
        "model": config.model, "recipe": config.recipe, "parameters": int(model.count_params()),
        "trained_parameters": trained_parameters, "branches": config.branches,
        "teacher": config.teacher, "init_weights": config.init_weights,
        "epochs_run": state.epoch, "best_epoch": state.best_epoch, "best_is_average": state.best_is_average,
        "train_seconds": round(state.train_seconds, 1), "train_images_per_second": round(speed, 1),
        "keras_backend": keras.backend.backend(), "machine": training_machine(), "distribution": parallel,
        "splits": metrics,
    }
    write_json(run_dir / "metrics.json", summary)
    return TrainResult(run_dir, best_path, metrics, state.epoch, state.train_seconds, speed,
                       run_dir / "weights" / "model.keras")
