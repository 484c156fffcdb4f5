"""`edgefer train`: recipes, the training loop around keras.Model.fit, checkpoints and resume.

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
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgefer.averaging import WeightAverage
from edgefer.data import DataSpec, FaceSet, is_csv, load_split, scale_to_unit_range
from edgefer.metrics import compute_metrics
from edgefer.plots import plot_confusion, plot_history
from edgefer.files import atomic_path, new_run_dir, read_json, write_json, write_text
from edgefer.pipeline import AugmentConfig, NO_AUGMENT, class_weights, make_train_dataset, steps_per_epoch


@dataclass
class TrainConfig:
    model: str = "mini_xception"
    data: str = ""
    recipe: str = "paper"
    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    schedule: str = "plateau"          # plateau | cosine | constant | cyclic
    warmup_epochs: int = 0
    cycle_epochs: int = 0              # cyclic: epochs per cosine cycle, which restarts at the peak rate
    l2: float | None = None            # None: the model's default decay
    width: float = 1.0                 # multiplier on every hidden layer's filters/units
    dropout: float | None = None       # None: the model's default dropout
    label_smoothing: float = 0.0
    sam_rho: float = 0.0               # sharpness-aware minimisation radius (0: plain steps)
    branches: int = 0                  # >0: train mini_xception re-parameterized with this many parallel
                                       # conv+BN branches per layer, merged into the plain model at the end
    init_weights: str | None = None    # start from this trained .keras model's weights (same architecture)
    teacher: list[str] = field(default_factory=list)  # .keras teachers to distil from; several = an ensemble
    distill_weight: float = 0.5        # share of the teacher's softened probabilities in the target
    distill_temperature: float = 2.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    balance_classes: bool = False
    patience: int = 50                 # early stopping on validation accuracy
    plateau_patience: int = 12         # ReduceLROnPlateau on validation loss
    plateau_factor: float = 0.1
    min_lr: float = 1e-6
    precise_bn: bool = True            # recompute BN statistics before each validation
    swa_start: int = 0                 # average the weights from this epoch on (0: no averaging); every
                                       # epoch, or under the cyclic schedule the end of every cycle
    clean_epochs: int = 0              # train the last K epochs without augmentation (mixup included)
    seed: int = 0
    input_size: int = 48
    train_split: str = "Training"
    val_split: str = "PublicTest"
    test_split: str | None = None
    val_fraction: float = 0.1          # image folders only
    test_fraction: float = 0.1
    limit: int | None = None           # at most this many rows per split (quick runs, tests)
    skip_bad: bool = False
    name: str = ""
    project: str = "runs/train"

    def data_spec(self) -> DataSpec:
        return DataSpec(self.data, self.train_split, self.val_split, self.test_split, self.val_fraction,
                        self.test_fraction, self.seed, self.limit, self.skip_bad, self.input_size)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        values["augment"] = AugmentConfig(**values.get("augment", {}))
        if isinstance(values.get("teacher"), str) or values.get("teacher") is None:  # runs before ensembles
            values["teacher"] = [values["teacher"]] if values.get("teacher") else []
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# Named, reproducible configurations. Explicit command-line options override them.
RECIPES: dict[str, dict] = {
    # The reference paper / its open-source release: Adam 1e-3, batch 32, L2 0.01, plateau schedule,
    # rotation 10 deg, shift/zoom 10 %, horizontal flip, early stopping.
    "paper": dict(epochs=100, batch_size=32, lr=1e-3, schedule="plateau", label_smoothing=0.0,
                  patience=50, plateau_patience=12, augment=AugmentConfig()),
    # edgefer's shipped model: same architecture, cosine schedule with warm-up, batch 64, no early stop
    # (the cosine tail is where accuracy is made). L2 5e-4 and label smoothing 0.05: the paper's L2 0.01
    # with smoothing 0.1 under-fit (train = val = 56 % after 90 epochs) and left 138 of 496 channels (40 % of the parameters) dead.
    # 200 epochs: 203 (a GPU run) scored 64.5 % on PublicTest where 100 scored 63.2 %.
    "best": dict(epochs=200, batch_size=64, lr=3e-3, schedule="cosine", warmup_epochs=3, l2=5e-4,
                 label_smoothing=0.05, patience=1000, augment=AugmentConfig()),
    # Stage two of the shipped model: a short second cosine schedule that starts from a trained student
    # (--weights) and distils from teachers edgefer trained (--teacher, repeatable), e.g. a VGG and the
    # student itself (the ensemble's probabilities are averaged).
    "distil": dict(epochs=40, batch_size=64, lr=1e-3, schedule="cosine", warmup_epochs=2, l2=5e-4,
                   label_smoothing=0.0, distill_weight=0.7, distill_temperature=2.0, patience=1000,
                   augment=AugmentConfig()),
    # A second schedule for a trained model (--weights): a constant rate near the end of `best`'s cosine
    # (5e-5), no augmentation, and stochastic weight averaging of every epoch; the average competes with
    # the single epochs for the best checkpoint. From the 64.5 % model: with augmentation the epochs held
    # 63.5-64.4 % (16 epochs), without it 64.5-64.8 % and the average 64.9 % (4 epochs); rates of 2e-4 and
    # more (constant, or 3-epoch cosine cycles) pushed it down.
    "swa": dict(epochs=4, batch_size=64, lr=5e-5, schedule="constant", warmup_epochs=0, l2=5e-4,
                label_smoothing=0.05, swa_start=1, patience=1000, augment=NO_AUGMENT),
    # A smoke-test recipe: a couple of epochs, no augmentation.
    "quick": dict(epochs=2, batch_size=64, lr=2e-3, schedule="plateau", patience=1000,
                  augment=NO_AUGMENT),
}


def config_from_recipe(recipe: str, **overrides) -> TrainConfig:
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    values = dict(RECIPES[recipe], recipe=recipe)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if recipe == "distil" and not values.get("teacher"):
        raise ValueError("recipe 'distil' needs --teacher PATH (a trained .keras model; repeat for an ensemble)")
    if recipe == "swa" and not values.get("init_weights"):
        raise ValueError("recipe 'swa' needs --weights PATH (the trained .keras model to continue and average)")
    config = TrainConfig(**values)
    _check_schedule(config)
    _check_branches(config)
    return config


SCHEDULES = ("plateau", "cosine", "cyclic", "constant")


def _check_schedule(config: TrainConfig) -> None:
    """Fail on bad schedule options before any data is read or a run directory is made."""
    if config.schedule not in SCHEDULES:
        raise ValueError(f"--schedule {config.schedule}: unknown; expected one of {', '.join(SCHEDULES)}")
    if config.schedule == "cyclic" and config.cycle_epochs < 1:
        raise ValueError(f"schedule 'cyclic' needs --cycle-epochs >= 1, got {config.cycle_epochs}")
    if config.swa_start < 0:
        raise ValueError(f"--swa-start {config.swa_start}: expected an epoch number >= 1, or 0 for no averaging")
    if config.clean_epochs < 0:
        raise ValueError(f"--clean-epochs {config.clean_epochs}: expected a number of final epochs >= 0")


def _check_branches(config: TrainConfig) -> None:
    if not config.branches:
        return
    if config.branches < 0:
        raise ValueError(f"--branches {config.branches}: expected a number of parallel branches >= 1, or 0 for none")
    if config.model != "mini_xception":
        raise ValueError(f"--branches applies to mini_xception only, not {config.model!r}")
    if config.init_weights:
        raise ValueError("--branches starts from random weights: it cannot be combined with --weights")


@dataclass
class TrainResult:
    run_dir: Path
    best_model: Path
    metrics: dict[str, dict]
    epochs_run: int
    seconds: float
    images_per_second: float


# --------------------------------------------------------------------------- keras helpers


def predict_probabilities(model, images_u8: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax outputs for uint8 faces (N, S, S). Pads the last batch to full size (oneDNN guard)."""
    x = scale_to_unit_range(images_u8)[..., None]
    count = len(x)
    padded = math.ceil(count / batch_size) * batch_size
    if padded != count:
        x = np.concatenate([x, np.zeros((padded - count, *x.shape[1:]), x.dtype)])
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))[:count]


def recalibrate_batchnorm(model, images_u8: np.ndarray, batch_size: int = 256) -> int:
    """Replace every BatchNormalization's moving statistics with their exact average over `images_u8`.

    Moving averages lag the weights badly after short training (a 3-epoch model scored 24% in
    inference mode on data it fit), so edgefer recomputes them: a training-mode forward pass per batch
    with momentum (k-1)/k makes the k-th update a cumulative mean. Returns the batches used.
    """
    import keras

    norms = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return 0
    saved = [layer.momentum for layer in norms]
    x = scale_to_unit_range(images_u8)[..., None]
    batches = max(1, len(x) // batch_size)
    try:
        for k in range(batches):
            for layer in norms:
                layer.momentum = k / (k + 1)
            model(x[k * batch_size:(k + 1) * batch_size], training=True)
    finally:
        for layer, momentum in zip(norms, saved):
            layer.momentum = momentum
    return batches


def _all_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def _optimizer(config: TrainConfig, steps: int):
    import keras

    _check_schedule(config)  # configs read back by --resume did not pass config_from_recipe
    if config.schedule == "cosine":
        warmup = config.warmup_epochs * steps
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.lr / 10 if warmup else config.lr,
            decay_steps=max(1, config.epochs * steps - warmup),
            alpha=config.min_lr / config.lr,
            warmup_target=config.lr if warmup else None,
            warmup_steps=warmup,
        )
    elif config.schedule == "cyclic":
        rate = keras.optimizers.schedules.CosineDecayRestarts(
            initial_learning_rate=config.lr, first_decay_steps=config.cycle_epochs * steps, t_mul=1.0,
            m_mul=1.0, alpha=config.min_lr / config.lr)
    else:  # plateau (stepped by the epoch-end callback) or constant
        rate = config.lr
    return keras.optimizers.Adam(learning_rate=rate)


def current_lr(optimizer) -> float:
    import keras

    rate = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(rate))


# --------------------------------------------------------------------------- the epoch-end logic


@dataclass
class LoopState:
    """What --resume needs besides the weights and optimizer: counters of the schedule and stopping."""

    epoch: int = 0                      # epochs completed
    best_score: float = -1.0            # best validation accuracy
    best_epoch: int = 0
    best_is_average: bool = False       # the best checkpoint is the weight average, not a single epoch
    plateau_best: float = float("inf")  # best validation loss seen by the plateau schedule
    plateau_wait: int = 0
    stop_wait: int = 0
    train_seconds: float = 0.0
    images_seen: int = 0


def _epoch_end_callback(config, run_dir, state, val, calibration, steps, on_epoch=None, average=None):
    import keras

    class EpochEnd(keras.callbacks.Callback):
        """Validate (after precise BN), average weights, checkpoint atomically, step the plateau schedule,
        stop early."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            seconds = time.perf_counter() - self.started
            state.train_seconds += seconds
            state.images_seen += steps * config.batch_size
            if config.precise_bn:
                recalibrate_batchnorm(self.model, calibration)
            probabilities = predict_probabilities(self.model, val.images)
            metrics = compute_metrics(probabilities, val.labels)
            logs.update(val_loss=metrics.loss, val_accuracy=metrics.accuracy, val_macro_f1=metrics.macro_f1)
            row = {"epoch": epoch + 1, "lr": current_lr(self.model.optimizer),
                   "loss": float(logs.get("loss", float("nan"))),
                   "accuracy": float(logs.get("accuracy", float("nan"))),
                   "val_loss": metrics.loss, "val_accuracy": metrics.accuracy,
                   "val_macro_f1": metrics.macro_f1, "seconds": round(seconds, 2)}
            improved = self._keep_if_best(metrics.accuracy, epoch, is_average=False)
            if average is not None:
                row["swa_val_accuracy"] = float("nan")
                if _folds_into_average(config, epoch + 1):
                    row["swa_val_accuracy"], average_is_best = self._validate_average(epoch)
                    improved = improved or average_is_best
                logs["swa_val_accuracy"] = row["swa_val_accuracy"]
            _append_history(run_dir / "history.csv", row)
            state.epoch = epoch + 1
            state.stop_wait = 0 if improved else state.stop_wait + 1
            if config.schedule == "plateau":
                self._step_plateau(metrics.loss)
            _save_model(self.model, run_dir / "weights" / "last.keras")
            write_json(run_dir / "state.json", dataclasses.asdict(state))
            if on_epoch:
                on_epoch(row, improved)
            if state.stop_wait >= config.patience:
                self.model.stop_training = True

        def _keep_if_best(self, accuracy, epoch, is_average):
            if accuracy <= state.best_score:
                return False
            state.best_score, state.best_epoch, state.best_is_average = accuracy, epoch + 1, is_average
            _save_model(self.model, run_dir / "weights" / "best.keras")
            return True

        def _validate_average(self, epoch):
            """Fold this epoch's weights into the average, validate the average (with exact BN statistics)
            and keep it if it is the best so far; training then goes on from the epoch's own weights."""
            current = self.model.get_weights()
            average.add(current)
            average.save(run_dir / "weights" / "swa.npz")
            self.model.set_weights(average.weights_like(current))
            try:
                recalibrate_batchnorm(self.model, calibration)
                accuracy = compute_metrics(predict_probabilities(self.model, val.images), val.labels).accuracy
                return accuracy, self._keep_if_best(accuracy, epoch, is_average=True)
            finally:
                self.model.set_weights(current)

        def _step_plateau(self, val_loss):
            if val_loss < state.plateau_best - 1e-4:
                state.plateau_best, state.plateau_wait = val_loss, 0
                return
            state.plateau_wait += 1
            if state.plateau_wait >= config.plateau_patience:
                lr = current_lr(self.model.optimizer)
                self.model.optimizer.learning_rate.assign(max(lr * config.plateau_factor, config.min_lr))
                state.plateau_wait = 0

    return EpochEnd()


def _run_progress(config: TrainConfig):
    """Keras' progress printer, counting "Epoch N/total" against the whole run rather than the phase that
    one fit() call trains (the augmented phase of a --clean-epochs run ends before the run does)."""
    import keras

    class RunProgress(keras.callbacks.ProgbarLogger):
        def set_params(self, params):
            super().set_params(params)
            self.epochs = config.epochs

    return RunProgress()


def _folds_into_average(config: TrainConfig, epoch: int) -> bool:
    """Whether the weights after `epoch` (1-based) join the average: every epoch from swa_start on, or
    under the cyclic schedule only at the end of each cycle, where the rate is lowest."""
    if not config.swa_start or epoch < config.swa_start:
        return False
    return config.schedule != "cyclic" or epoch % config.cycle_epochs == 0


def training_machine() -> dict:
    """The host (cores, memory, platform) plus the accelerators the Keras backend trains on."""
    import keras

    from edgefer.profiling import machine_description

    backend, found = keras.backend.backend(), []
    if backend == "jax":
        import jax

        found = [device.device_kind for device in jax.devices() if device.platform != "cpu"]
    elif backend == "tensorflow":
        import tensorflow as tf

        found = [device.name for device in tf.config.list_physical_devices("GPU")]
    return {**machine_description(), "accelerators": found}


def _save_model(model, path: Path) -> None:
    with atomic_path(path) as temp:
        model.save(temp)


_HISTORY_FIELDS = ["epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1", "seconds"]


def _append_history(path: Path, row: dict) -> None:
    """Rewrite history.csv atomically with the new row (never a torn file, rows past a resume kept)."""
    rows = read_history(path)
    rows = [r for r in rows if int(r["epoch"]) < row["epoch"]] + [row]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_HISTORY_FIELDS + [k for k in row if k not in _HISTORY_FIELDS])
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def read_history(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    with open(path, newline="") as handle:
        return [{k: float(v) if k != "epoch" else int(v) for k, v in r.items()} for r in csv.DictReader(handle)]


# --------------------------------------------------------------------------- train / resume


def copy_weights(source_path: str | os.PathLike, model) -> None:
    """Load a trained model's weights into `model` (warm start); the architectures must match exactly."""
    from edgefer.models import load_face_model

    try:
        source = load_face_model(source_path, "start from")
    except (FileNotFoundError, ValueError) as error:
        raise type(error)(f"--weights {error}") from None
    theirs, ours = source.weights, model.weights
    if len(theirs) != len(ours):
        raise ValueError(f"--weights {source_path}: {source.name} has {len(theirs)} weight tensors, "
                         f"{model.name} expects {len(ours)}; expected the same architecture")
    for their, our in zip(theirs, ours):
        if tuple(their.shape) != tuple(our.shape):
            raise ValueError(f"--weights {source_path}: {their.path} is {tuple(their.shape)}, {model.name} expects "
                             f"{our.path} {tuple(our.shape)}; expected the same architecture and width")
    model.set_weights(source.get_weights())


def _configure_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the CLI


def train(config: TrainConfig, log=print, on_epoch=None, verbose: int = 1) -> TrainResult:
    """Train a registered model per `config` in a new run directory."""
    if not config.data:
        raise ValueError("no training data: pass --data PATH (a FER-2013 CSV or an image folder)")
    from edgefer.sharpness import check_rho

    check_rho(config.sam_rho)
    _check_branches(config)
    if config.teacher:
        from edgefer.distillation import check_options

        check_options(config.distill_weight, config.distill_temperature)
    for option, path in [("--weights", config.init_weights)] + [("--teacher", path) for path in config.teacher]:
        if path and not Path(path).is_file():  # fail before the data is read and a run directory is made
            raise FileNotFoundError(f"{option} {path}: model file not found (expected a .keras file)")
    run_dir = new_run_dir(config.project, config.name or config.model)
    write_json(run_dir / "args.json", config.to_dict())
    log(f"run directory {run_dir} (if interrupted: edgefer train --resume {run_dir})")
    return _fit(config, run_dir, LoopState(), log, on_epoch, verbose)


def resume(run_dir: str | os.PathLike, log=print, on_epoch=None, verbose: int = 1, epochs: int | None = None,
           clean_epochs: int | None = None):
    """Continue an interrupted run from weights/last.keras with its optimizer and schedule state.
    `epochs` and `clean_epochs` change the run's length and its augmentation-free tail (args.json is updated)."""
    run_dir = Path(run_dir)
    args_path, state_path = run_dir / "args.json", run_dir / "state.json"
    if not args_path.exists():
        raise FileNotFoundError(f"{run_dir}: not a training run (no args.json)")
    config = TrainConfig.from_dict(read_json(args_path))
    changes = {k: v for k, v in dict(epochs=epochs, clean_epochs=clean_epochs).items() if v is not None}
    if changes:
        config = dataclasses.replace(config, **changes)
        _check_schedule(config)
        write_json(args_path, config.to_dict())
    state = LoopState(**read_json(state_path)) if state_path.exists() else LoopState()
    return _fit(config, run_dir, state, log, on_epoch, verbose)


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


def _fit(config: TrainConfig, run_dir: Path, state: LoopState, log, on_epoch, verbose) -> TrainResult:
    _configure_tensorflow()
    import keras

    from edgefer.sharpness import enable_sharpness_aware

    train_set, val_set, test_set = _load_splits(config, log)
    steps = steps_per_epoch(len(train_set), config.batch_size)
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
            optimizer=_optimizer(config, steps),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
        )
    enable_sharpness_aware(model, config.sam_rho)
    weights = class_weights(train_set.labels) if config.balance_classes else None
    targets = _distillation_targets(config, train_set, val_set, log) if config.teacher else None
    calibration = train_set.images[np.random.default_rng(config.seed).permutation(len(train_set))[:4096]]
    average = _weight_average(config, run_dir, state, log)
    callback = _epoch_end_callback(config, run_dir, state, val_set, calibration, steps, on_epoch, average)
    for end, augment in training_phases(config):
        if state.epoch >= end:
            continue
        if state.stop_wait >= config.patience:
            break
        if augment is NO_AUGMENT and config.augment != NO_AUGMENT:
            log(f"epochs {state.epoch + 1}-{end} without augmentation (--clean-epochs {config.clean_epochs})")
        dataset = make_train_dataset(train_set.images, train_set.labels, config.batch_size,
                                     augment, config.seed + state.epoch, weights, targets, endless=True)
        model.fit(dataset, epochs=end, initial_epoch=state.epoch, steps_per_epoch=steps,
                  callbacks=[callback, _run_progress(config)], shuffle=False, verbose=verbose)
    return _finish(config, run_dir, state, val_set, test_set, log)


def _build_training_model(config: TrainConfig, log):
    from edgefer.models import build_model

    units = None
    if config.branches:
        from edgefer.reparam import BranchUnits

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
    from edgefer.distillation import load_teacher, soft_targets, teacher_probabilities

    teachers = [load_teacher(path, config.input_size) for path in config.teacher]
    accuracy = compute_metrics(teacher_probabilities(teachers, val_set.images), val_set.labels).accuracy
    what = config.teacher[0] if len(teachers) == 1 else f"an ensemble of {len(teachers)} ({', '.join(config.teacher)})"
    log(f"distilling from {what} (flip-averaged accuracy on {config.val_split}: {accuracy:.4f}), "
        f"weight {config.distill_weight}, temperature {config.distill_temperature}")
    probabilities = teacher_probabilities(teachers, train_set.images)
    return soft_targets(train_set.labels, probabilities, config.distill_weight, config.distill_temperature)


def _finish(config, run_dir, state, val_set, test_set, log) -> TrainResult:
    import keras

    best_path = run_dir / "weights" / "best.keras"
    model = keras.saving.load_model(best_path, compile=False)
    trained_parameters = int(model.count_params())
    if config.branches:
        from edgefer.reparam import merge_branches

        model = merge_branches(model, config.width)
        log(f"merged the {config.branches}-branch training form into plain {config.model} "
            f"({trained_parameters:,} -> {model.count_params():,} parameters)")
    _save_model(model, run_dir / "weights" / "model.keras")  # deployable: best weights, no optimizer state
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
        "keras_backend": keras.backend.backend(), "machine": training_machine(), "splits": metrics,
    }
    write_json(run_dir / "metrics.json", summary)
    return TrainResult(run_dir, best_path, metrics, state.epoch, state.train_seconds, speed)
