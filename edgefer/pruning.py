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

import csv
import io
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgefer.channels import ChannelGraph, Merge, channel_graph, remove_channels
from edgefer.data import DataSpec, FaceSet, is_csv, load_split
from edgefer.files import atomic_path, new_run_dir, write_json, write_text
from edgefer.metrics import compute_metrics
from edgefer.models import load_face_model

CRITERIA = ("kernel", "angle", "zero")
METRICS = ("loss", "accuracy")


@dataclass
class PruneConfig:
    model: str
    data: str
    criteria: tuple[str, ...] = ("kernel",)
    metric: str = "loss"
    rank: str = "global"                # kernel criterion: global | layer
    threshold: float = 0.1
    step: int = 1                       # channels removed per step
    target_fraction: float | None = None  # stop once parameters <= this fraction of the original
    max_steps: int | None = None
    step_finetune_epochs: int = 0       # fine-tuning after every kept step
    finetune_epochs: int = 0            # fine-tuning once at the end
    finetune_lr: float = 3e-4
    batch_size: int = 64
    angle_degrees: float = 15.0
    activation_faces: int = 512
    calibration_faces: int = 1024
    train_split: str = "Training"
    val_split: str = "PublicTest"
    limit: int | None = None
    seed: int = 0
    name: str = ""
    project: str = "runs/prune"

    def validate(self) -> None:
        unknown = [c for c in self.criteria if c not in CRITERIA]
        if unknown or not self.criteria:
            raise ValueError(f"--criterion: unknown {', '.join(unknown) or '(none)'}; "
                             f"expected a comma-separated list of {', '.join(CRITERIA)}")
        if self.rank not in ("global", "layer"):
            raise ValueError(f"--rank {self.rank!r}: expected global or layer")
        if self.metric not in METRICS:
            raise ValueError(f"--metric {self.metric!r}: expected loss or accuracy")
        if self.threshold < 0:
            raise ValueError(f"--threshold {self.threshold}: expected a non-negative number")
        if self.step < 1:
            raise ValueError(f"--step {self.step}: expected at least 1 channel per step")
        if self.target_fraction is not None and not 0 < self.target_fraction < 1:
            raise ValueError(f"--target-fraction {self.target_fraction}: expected a number between 0 and 1")
        if not 0 < self.angle_degrees < 90:
            raise ValueError(f"--angle {self.angle_degrees}: expected degrees between 0 and 90")


@dataclass
class Proposal:
    criterion: str
    removals: dict[str, list[int]]
    merges: list[Merge] = field(default_factory=list)
    statistic: float = float("nan")     # kernel: largest importance removed; angle: most extreme angle

    @property
    def count(self) -> int:
        return sum(len(channels) for channels in self.removals.values())

    def describe(self) -> str:
        return ", ".join(f"{group}[{','.join(map(str, sorted(channels)))}]"
                         for group, channels in self.removals.items())


@dataclass
class StepRow:
    step: int
    criterion: str
    removed: str
    units_removed: int
    statistic: float
    val_loss: float
    val_accuracy: float
    parameters: int
    keras_kb: float
    kept: bool
    seconds: float


@dataclass
class PruneResult:
    run_dir: Path
    model_path: Path
    rows: list[StepRow]
    stop_reason: str
    summary: dict


# --------------------------------------------------------------------------- criteria


def kernel_importance(model, graph: ChannelGraph | None = None) -> dict[str, np.ndarray]:
    """I = sqrt(1/k^2 * sum w^2) per output channel of every prunable group (BN scale folded in)."""
    graph = graph or channel_graph(model)
    importance = {}
    for group in graph.prunable():
        squares = np.zeros(group.width)
        for name in group.producers:
            per_filter = _filter_importance(model.get_layer(name))
            if name in graph.bn_after:
                per_filter = per_filter * _bn_scale(model.get_layer(graph.bn_after[name]))
            squares += per_filter ** 2
        importance[group.name] = np.sqrt(squares)
    return importance


def _filter_importance(layer) -> np.ndarray:
    kind = type(layer).__name__
    weights = layer.get_weights()
    if kind == "SeparableConv2D":
        kernel = weights[1]                       # the pointwise 1x1 filters make the output channels
    else:
        kernel = weights[0]
    area = kernel.shape[0] * kernel.shape[1] if kernel.ndim == 4 else 1
    flat = kernel.reshape(-1, kernel.shape[-1])
    return np.sqrt((flat.astype(np.float64) ** 2).sum(axis=0) / area)


def _bn_scale(layer) -> np.ndarray:
    variance = np.asarray(layer.moving_variance, np.float64)
    gamma = np.asarray(layer.gamma, np.float64) if layer.scale else np.ones_like(variance)
    return np.abs(gamma) / np.sqrt(variance + layer.epsilon)


def propose_kernel(model, graph: ChannelGraph, count: int, rank: str = "global") -> Proposal | None:
    """The `count` least important filters: anywhere (rank 'global', the study's rule) or relative to
    their own layer's mean importance (rank 'layer': every layer is thinned in proportion; raw
    importances of a 5x5 first conv and a 9,216-input dense layer are not comparable)."""
    candidates = []
    for group_name, values in kernel_importance(model, graph).items():
        scale = float(values.mean()) if rank == "layer" and values.mean() > 0 else 1.0
        candidates += [(float(v) / scale, group_name, c) for c, v in enumerate(values)]
    candidates.sort()
    removals: dict[str, list[int]] = {}
    largest = float("nan")
    for value, group_name, channel in candidates:
        chosen = removals.setdefault(group_name, [])
        if len(chosen) + 1 >= graph.groups[group_name].width:   # always leave one channel
            continue
        chosen.append(channel)
        largest = value
        if sum(map(len, removals.values())) == count:
            break
    removals = {k: v for k, v in removals.items() if v}
    return Proposal("kernel", removals, statistic=largest) if removals else None


def consumed_activations(model, graph: ChannelGraph, faces_u8: np.ndarray) -> dict[str, np.ndarray]:
    """For each prunable group whose consumers all read one tensor: that tensor as (samples, channels)."""
    import keras

    from edgefer.data import scale_to_unit_range

    tensors, names = [], []
    for group in graph.prunable():
        inputs = {id(model.get_layer(c.layer).input) for c in group.consumers}
        if len(inputs) != 1:
            continue
        tensors.append(model.get_layer(group.consumers[0].layer).input)
        names.append(group.name)
    if not tensors:
        return {}
    probe = keras.Model(model.inputs, tensors)
    batch = 256  # whole batches only: the probe's statistics need no padded rows
    x = scale_to_unit_range(faces_u8[: (len(faces_u8) // batch) * batch or len(faces_u8)])[..., None]
    outputs = probe.predict(x, batch_size=batch, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    result = {}
    for name, output in zip(names, outputs):
        # (N, H, W, C) maps and channel-last flattened (N, P*C) rows both become (samples, C)
        result[name] = np.asarray(output, np.float64).reshape(-1, graph.groups[name].width)
    return result


def propose_zero(model, graph: ChannelGraph, faces_u8: np.ndarray, count: int) -> Proposal | None:
    removals: dict[str, list[int]] = {}
    for group_name, activations in consumed_activations(model, graph, faces_u8).items():
        peak = np.abs(activations).max(axis=0)
        dead = [int(c) for c in np.flatnonzero(peak <= 1e-6 * max(float(peak.max()), 1e-12))]
        room = graph.groups[group_name].width - 1
        if dead and room > 0:
            removals[group_name] = dead[:room]
    flat = [(g, c) for g, channels in removals.items() for c in channels][:count]
    chosen: dict[str, list[int]] = {}
    for group_name, channel in flat:
        chosen.setdefault(group_name, []).append(channel)
    return Proposal("zero", chosen, statistic=0.0) if chosen else None


def _mergeable(model, graph: ChannelGraph, group_name: str) -> bool:
    kinds = {type(model.get_layer(c.layer)).__name__ for c in graph.groups[group_name].consumers}
    return bool(kinds) and kinds <= {"Conv2D", "Dense"}


def angle_pairs(activations: np.ndarray, limit_degrees: float) -> list[tuple[float, int, int]]:
    """(extremeness in degrees, keep, drop) for pairs whose centred vectors are within `limit_degrees`
    of parallel or of opposite; the channel with the smaller spread is the one dropped."""
    centred = activations - activations.mean(axis=0)
    norms = np.linalg.norm(centred, axis=0)
    live = np.flatnonzero(norms > 1e-9 * max(float(norms.max()), 1e-12))
    if len(live) < 2:
        return []
    unit = centred[:, live] / norms[live]
    cosine = np.clip(unit.T @ unit, -1.0, 1.0)
    degrees = np.degrees(np.arccos(cosine))
    extremeness = np.minimum(degrees, 180.0 - degrees)
    rows, cols = np.triu_indices(len(live), k=1)
    close = extremeness[rows, cols] < limit_degrees
    pairs = []
    for i, j in zip(rows[close], cols[close]):
        a, b = int(live[i]), int(live[j])
        keep, drop = (a, b) if norms[a] >= norms[b] else (b, a)
        pairs.append((float(extremeness[i, j]), keep, drop))
    pairs.sort()
    return pairs


def propose_angle(model, graph: ChannelGraph, faces_u8: np.ndarray, count: int, limit_degrees: float):
    candidates = []
    activations = consumed_activations(model, graph, faces_u8)
    for group_name, values in activations.items():
        if _mergeable(model, graph, group_name):
            candidates += [(extreme, group_name, keep, drop) for extreme, keep, drop in
                           angle_pairs(values, limit_degrees)]
    candidates.sort()
    used: set[tuple[str, int]] = set()
    removals: dict[str, list[int]] = {}
    merges: list[Merge] = []
    worst = float("nan")
    for extreme, group_name, keep, drop in candidates:
        if (group_name, keep) in used or (group_name, drop) in used:
            continue
        if len(removals.get(group_name, [])) + 1 >= graph.groups[group_name].width:
            continue
        a, b = activations[group_name][:, keep], activations[group_name][:, drop]
        alpha = float(np.dot(a - a.mean(), b - b.mean()) / max(np.dot(a - a.mean(), a - a.mean()), 1e-12))
        beta = float(b.mean() - alpha * a.mean())
        merges.append(Merge(group_name, keep, drop, alpha, beta))
        removals.setdefault(group_name, []).append(drop)
        used.update({(group_name, keep), (group_name, drop)})
        worst = extreme
        if len(merges) == count:
            break
    return Proposal("angle", removals, merges, statistic=worst) if merges else None


def propose(criterion: str, model, faces_u8: np.ndarray, config: PruneConfig) -> Proposal | None:
    graph = channel_graph(model)
    if criterion == "kernel":
        return propose_kernel(model, graph, config.step, config.rank)
    if criterion == "zero":
        return propose_zero(model, graph, faces_u8, config.step)
    return propose_angle(model, graph, faces_u8, config.step, config.angle_degrees)


# --------------------------------------------------------------------------- the pruning loop


def score(model, faces: FaceSet) -> tuple[float, float]:
    from edgefer.training import predict_probabilities

    metrics = compute_metrics(predict_probabilities(model, faces.images), faces.labels)
    return metrics.loss, metrics.accuracy


def keras_size_kb(model) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.stat().st_size / 1024


def finetune(model, train: FaceSet, epochs: int, lr: float, batch_size: int, seed: int):
    import keras

    from edgefer.pipeline import AugmentConfig, make_train_dataset, steps_per_epoch

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
    from edgefer.training import recalibrate_batchnorm

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
    run_dir = new_run_dir(config.project, config.name or Path(config.model).stem)
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
    summary = _summary(config, rows, reason, model_path)
    _write_reports(run_dir, rows, summary)
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


# --------------------------------------------------------------------------- reports

_COLUMNS = ["step", "criterion", "units_removed", "statistic", "val_loss", "val_accuracy", "parameters",
            "keras_kb", "kept", "seconds", "removed"]


def _summary(config: PruneConfig, rows: list[StepRow], reason: str, model_path: Path) -> dict:
    kept = [r for r in rows if r.kept]
    first, last = rows[0], kept[-1]
    return {
        "model": config.model, "criteria": list(config.criteria), "metric": config.metric,
        "threshold": config.threshold, "stop_reason": reason, "pruned_model": str(model_path),
        "steps_kept": sum(1 for r in kept if r.criterion not in ("-", "finetune")),
        "units_removed": sum(r.units_removed for r in kept),
        "parameters": {"before": first.parameters, "after": last.parameters,
                       "fraction": round(last.parameters / first.parameters, 4)},
        "keras_kb": {"before": round(first.keras_kb, 1), "after": round(last.keras_kb, 1)},
        "val_loss": {"before": first.val_loss, "after": last.val_loss},
        "val_accuracy": {"before": first.val_accuracy, "after": last.val_accuracy},
    }


def _write_reports(run_dir: Path, rows: list[StepRow], summary: dict) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_COLUMNS)
    writer.writeheader()
    writer.writerows({k: asdict(r)[k] for k in _COLUMNS} for r in rows)
    write_text(run_dir / "steps.csv", buffer.getvalue())
    write_text(run_dir / "steps.md", render_table(rows, summary))
    write_json(run_dir / "summary.json", summary)
    plot_steps(rows, run_dir / "steps.png")


def _number(value: float, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def render_table(rows: list[StepRow], summary: dict | None = None, max_rows: int = 60) -> str:
    """The study's per-step table as Markdown (long runs keep the first and last rows)."""
    lines = ["| step | criterion | removed | min importance / angle | val loss | val acc | parameters | "
             ".keras KB | kept |", "|---:|---|---|---:|---:|---:|---:|---:|---|"]
    shown = rows if len(rows) <= max_rows else rows[: max_rows // 2] + rows[-max_rows // 2:]
    for index, r in enumerate(shown):
        if len(rows) > max_rows and index == max_rows // 2:
            lines.append(f"| ... | {len(rows) - max_rows} steps omitted (all in steps.csv) | | | | | | | |")
        removed = r.removed if len(r.removed) <= 48 else r.removed[:45] + "..."
        lines.append(f"| {r.step} | {r.criterion} | {removed} | {_number(r.statistic, '.4g')} | "
                     f"{_number(r.val_loss, '.4f')} | {_number(r.val_accuracy, '.4f')} | {r.parameters:,} | "
                     f"{_number(r.keras_kb, '.1f')} | {'yes' if r.kept else 'no'} |")
    text = "\n".join(lines) + "\n"
    if summary:
        text += (f"\nStopped: {summary['stop_reason']}. Parameters {summary['parameters']['before']:,} -> "
                 f"{summary['parameters']['after']:,} ({summary['parameters']['fraction']:.1%}); "
                 f"validation accuracy {summary['val_accuracy']['before']:.4f} -> "
                 f"{summary['val_accuracy']['after']:.4f}.\n")
    return text


def plot_steps(rows: list[StepRow], path: Path) -> Path:
    from edgefer.plots import _pyplot

    plt = _pyplot()
    kept = [r for r in rows if r.kept]
    steps = [r.step for r in kept]
    figure, left = plt.subplots(figsize=(7, 4))
    left.plot(steps, [r.parameters for r in kept], color="tab:blue", marker=".")
    left.set_xlabel("pruning step")
    left.set_ylabel("parameters", color="tab:blue")
    right = left.twinx()
    right.plot(steps, [r.val_accuracy for r in kept], color="tab:green", marker=".", label="val accuracy")
    right.plot(steps, [r.val_loss for r in kept], color="tab:red", marker=".", label="val loss")
    right.set_ylabel("validation loss / accuracy")
    right.legend(loc="center right")
    left.set_title("structured pruning: parameters, loss and accuracy per step")
    figure.tight_layout()
    with atomic_path(path) as temp:
        figure.savefig(temp, dpi=110, format="png")
    plt.close(figure)
    return Path(path)
