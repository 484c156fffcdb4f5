"""`edgefer sweep`: hyper-parameter search over `edgefer train` with Optuna.

Each trial is a real training run in its own run directory (<out>/trials/trial<N>). The study lives in a
storage: SQLite in <out>/study.db by default, a journal file (`--storage journal:PATH`, many processes on one
machine or a shared file system) or a database server (`--storage postgresql://...`, many machines).
`--workers N` runs N local worker processes on the study; `--resume` continues a stopped study (its search
space must match). Workers on an RDB storage send heartbeats, so a trial whose worker was killed is failed
and retried instead of staying RUNNING; local workers that die are noticed by the parent, which fails their
trials and reruns their share. Poor trials are pruned per epoch on validation accuracy (median rule).
Samplers: grid, random, tpe.

Search space, on the command line (repeat --space) or in a YAML file with the same keys:
    lr=log:1e-4:1e-2          a float on a log scale          (YAML: lr: {log: [1e-4, 1e-2]})
    label_smoothing=float:0:0.2                                (YAML: label_smoothing: {float: [0, 0.2]})
    epochs=int:2:6                                             (YAML: epochs: {int: [2, 6]})
    batch_size=choice:32,64                                    (YAML: batch_size: {choice: [32, 64]})
The grid sampler needs finite values: numeric ranges are cut into --grid-points values.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.errors import EdgeferError
from edgefer.files import write_json, write_text

SWEEPABLE = {"lr": float, "batch_size": int, "l2": float, "label_smoothing": float, "mixup": float,
             "warmup_epochs": int, "epochs": int, "plateau_patience": int, "patience": int, "schedule": str,
             "width": float, "dropout": float}
KINDS = ("log", "float", "int", "choice")


class SweepError(EdgeferError):
    """Bad sweep option; one line."""


@dataclass(frozen=True)
class Dimension:
    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def grid(self, points: int) -> list:
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "log":
            return [float(v) for v in np.geomspace(self.low, self.high, points)]
        if self.kind == "float":
            return [float(v) for v in np.linspace(self.low, self.high, points)]
        return sorted({int(round(v)) for v in np.linspace(self.low, self.high, points)})

    def suggest(self, trial):
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")


def _convert(name: str, value):
    kind = SWEEPABLE[name]
    try:
        return kind(value) if kind is not int else int(float(value))
    except ValueError:
        raise SweepError(f"--space {name}: {value!r} is not a valid {kind.__name__}") from None


def _dimension(name: str, kind: str, values: list) -> Dimension:
    if name not in SWEEPABLE:
        raise SweepError(f"--space: {name!r} cannot be swept; expected one of {', '.join(SWEEPABLE)}")
    if kind not in KINDS:
        raise SweepError(f"--space {name}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "choice":
        if not values:
            raise SweepError(f"--space {name}: choice needs at least one value")
        return Dimension(name, kind, choices=tuple(_convert(name, v) for v in values))
    if len(values) != 2:
        raise SweepError(f"--space {name}: {kind} needs LOW:HIGH, got {values}")
    low, high = (float(_convert(name, v)) for v in values)
    if not low < high or (kind == "log" and low <= 0):
        raise SweepError(f"--space {name}: need 0 < LOW < HIGH for log, LOW < HIGH otherwise; got {low}, {high}")
    return Dimension(name, kind, low, high)


def parse_space(entries: list[str] | None = None, yaml_path: str | None = None) -> list[Dimension]:
    """Dimensions from `name=kind:a:b` / `name=choice:a,b` strings and/or a YAML file."""
    dimensions: dict[str, Dimension] = {}
    if yaml_path:
        import yaml

        try:
            spec = yaml.safe_load(Path(yaml_path).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise SweepError(f"{yaml_path}: not a readable YAML search space ({error})") from None
        for name, body in spec.items():
            if not isinstance(body, dict) or len(body) != 1:
                raise SweepError(f"{yaml_path}: {name}: expected one of {{log|float|int|choice: [...]}}")
            (kind, values), = body.items()
            dimensions[name] = _dimension(name, kind, list(values))
    for entry in entries or []:
        name, sep, rest = entry.partition("=")
        kind, _, values = rest.partition(":")
        if not sep or not kind:
            raise SweepError(f"--space {entry!r}: expected NAME=KIND:LOW:HIGH or NAME=choice:A,B")
        parts = values.split(",") if kind == "choice" else values.split(":")
        dimensions[name.strip()] = _dimension(name.strip(), kind.strip(), [p for p in parts if p != ""])
    if not dimensions:
        raise SweepError("empty search space: give --space NAME=KIND:... or --space-file FILE.yaml")
    return list(dimensions.values())


@dataclass
class SweepConfig:
    base: "object"                 # a TrainConfig: every trial starts from it
    space: list[Dimension]
    sampler: str = "tpe"
    trials: int = 20
    out: str = "runs/sweep/study"
    prune: bool = True
    grid_points: int = 3
    seed: int = 0
    resume: bool = False           # continue the study in `out` (its search space must be this one)
    heartbeat_seconds: int = 60    # RDB storages: a worker silent for 2x this has its trial failed and retried
    storage: str | None = None     # None: sqlite:///<out>/study.db; journal:PATH; postgresql://...
    workers: int = 1               # local worker processes sharing the study


def _stale_callback_name() -> str:
    """Optuna 4.9 renamed RDBStorage's failed_trial_callback to heartbeat_stale_trial_callback."""
    import inspect

    import optuna

    names = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    return "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in names else "failed_trial_callback"


def _sampler(config: SweepConfig):
    import optuna

    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=config.seed)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=config.seed)
    if config.sampler == "grid":
        return optuna.samplers.GridSampler({d.name: d.grid(config.grid_points) for d in config.space}, seed=config.seed)
    raise SweepError(f"unknown sampler {config.sampler!r}; expected grid, random or tpe")


def trial_config(base, params: dict, out: Path, number: int):
    """The TrainConfig of one trial: the base with the sampled values, in its own run directory."""
    from edgefer.train.config import with_overrides

    return with_overrides(base, **params, project=str(out / "trials"), name=f"trial{number}")


def open_storage(config: SweepConfig):
    """The study's storage: SQLite in --out (default; one machine), `journal:PATH` (a journal file with a
    lock: many processes on one machine or a shared file system), or any RDB URL such as
    `postgresql://user@host/db` (many machines; needs a driver such as psycopg). RDB storages send worker
    heartbeats: a trial whose worker stops beating is failed and retried once."""
    import optuna

    url = config.storage or f"sqlite:///{Path(config.out) / 'study.db'}"
    if url.startswith("journal:"):
        path = url[len("journal:"):]
        if not path:
            raise SweepError("--storage journal:PATH: expected a file path after 'journal:'")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    if "://" not in url:
        raise SweepError(f"--storage {url!r}: expected sqlite:///FILE, journal:FILE or an RDB URL such as "
                         "postgresql://user@host:5432/db")
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=config.heartbeat_seconds, grace_period=2 * config.heartbeat_seconds,
            **{_stale_callback_name(): optuna.storages.RetryFailedTrialCallback(max_retry=1)})
    except ImportError as error:
        raise SweepError(f"--storage {url.split('://')[0]}://...: its database driver is not installed "
                         f"({error}); e.g. pip install 'psycopg[binary]' for PostgreSQL") from None
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's connection errors are many classes
        first = " ".join(str(error).split("\n")[0].split())
        raise SweepError(f"--storage {url.split('@')[-1]}: cannot open the database ({first[:200]})") from None


def _study(config: SweepConfig, storage, sampler=None):
    import optuna

    return optuna.load_study(
        study_name=Path(config.out).name, storage=storage, sampler=sampler or _sampler(config),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1) if config.prune
        else optuna.pruners.NopPruner())


FINISHED = ("COMPLETE", "PRUNED")


def _finished(study) -> int:
    return sum(t.state.name in FINISHED for t in study.get_trials(deepcopy=False))


def run_sweep(config: SweepConfig, log=print) -> dict:
    """Run the study to `config.trials` finished trials, in this process or in `config.workers` local worker
    processes that share its storage; a worker that dies has its running trial failed and its share rerun."""
    import optuna

    sampler = _sampler(config)   # a bad sampler or storage fails before any folder is made
    if config.workers < 1:
        raise SweepError(f"--workers {config.workers}: expected at least 1 worker process")
    out = Path(config.out)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)   # the default SQLite file lives there
    try:
        storage = open_storage(config)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        name = out.name
        exists = name in optuna.study.get_all_study_names(storage)
        if exists and not config.resume:
            raise SweepError(f"--out {out}: its study {name!r} exists already (in {_where(config)}); pass "
                             "--resume to continue it, or choose a new --out folder")
        if config.resume and not exists:
            raise SweepError(f"--resume: no study {name!r} in {_where(config)}; expected the --out of an "
                             "earlier sweep")
    except SweepError:
        if made:   # a sweep that could not start leaves nothing behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    if not exists:
        optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study = _study(config, storage, sampler)
    space = [dataclasses.asdict(d) for d in config.space]
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", space)
    elif stored != json.loads(json.dumps(space)):
        raise SweepError(f"--resume: the study in {out} searched {_describe(stored)}, not {_describe(space)}; "
                         "expected the same --space (or choose a new --out)")
    if isinstance(storage, optuna.storages.RDBStorage):
        optuna.storages.fail_stale_trials(study)   # a killed worker's trial is failed (and retried), not RUNNING
    done = _finished(study)
    remaining = max(0, config.trials - done)
    log(f"study {name}: {done} finished trial(s) in {_where(config)}, running {remaining} more"
        + (f" on {config.workers} workers" if config.workers > 1 and remaining else ""))
    if remaining and config.workers == 1:
        _work(config, remaining, log)
    elif remaining:
        _run_workers(config, storage, log)
    return write_sweep_report(_study(config, storage), out, config)


def _where(config: SweepConfig) -> str:
    url = config.storage or str(Path(config.out) / "study.db")
    return url.split("@")[-1]   # never print a password


def _run_workers(config: SweepConfig, storage, log, rounds: int = 3) -> None:
    """Local worker processes on one study; the remaining trials are split between them, and whatever a
    dead worker left undone is split again (at most `rounds` times)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")   # fresh interpreters: no TensorFlow state is forked
    for _ in range(rounds):
        remaining = config.trials - _finished(_study(config, storage))
        if remaining <= 0:
            return
        count = min(config.workers, remaining)
        shares = [remaining // count + (k < remaining % count) for k in range(count)]
        workers = [context.Process(target=_work, args=(config, share, None), name=f"edgefer-sweep-{k}")
                   for k, share in enumerate(shares)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        for worker in workers:
            if worker.exitcode != 0:
                failed = _fail_trials_of(config, storage, worker.pid)
                log(f"worker {worker.pid} died (exit {worker.exitcode}); its running trial(s) {failed} failed, "
                    "their share is run again")


def _fail_trials_of(config: SweepConfig, storage, pid: int) -> list[int]:
    """Mark the RUNNING trials that worker `pid` started as FAIL (any storage, heartbeat or not)."""
    import optuna

    study, failed = _study(config, storage), []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get("worker_pid") == pid:
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            failed.append(trial.number)
    return failed


def _work(config: SweepConfig, n_trials: int, log=None) -> None:
    """One worker: `n_trials` trials of the shared study (also the in-process path)."""
    import optuna

    from edgefer.train import train

    log = log or (lambda line: print(line, flush=True))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(config.out)
    study = _study(config, open_storage(config))

    def objective(trial):
        trial.set_user_attr("worker_pid", os.getpid())
        params = {d.name: d.suggest(trial) for d in config.space}
        run_config = trial_config(config.base, params, out, trial.number)
        trial.set_user_attr("run_dir", str(Path(run_config.project) / run_config.name))

        def report(row, improved):
            trial.report(row["val_accuracy"], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"val_accuracy {row['val_accuracy']:.4f} at epoch {row['epoch']}")

        result = train(run_config, log=lambda *_: None, on_epoch=report, verbose=0)
        accuracy = result.metrics[run_config.val_split]["accuracy"]
        log(f"trial {trial.number}: {_params_text(params)} -> val_accuracy {accuracy:.4f}")
        return accuracy

    study.optimize(objective, n_trials=n_trials, catch=())


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in params.items())


def _describe(space: list[dict]) -> str:
    return " ".join(f"{d['name']}={d['kind']}" for d in space) or "nothing"


def write_sweep_report(study, out: Path, config: SweepConfig) -> dict:
    import optuna

    trials = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
               "run_dir": t.user_attrs.get("run_dir")} for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = {"value": study.best_value, "params": study.best_params,
            "run_dir": study.best_trial.user_attrs.get("run_dir")} if complete else None
    names = [d.name for d in config.space]
    lines = [f"# Sweep {out.name} ({config.sampler})", "",
             "| trial | state | val accuracy | " + " | ".join(names) + " |",
             "| ---: | --- | ---: | " + " | ".join("---" for _ in names) + " |"]
    for t in trials:
        value = "-" if t["value"] is None else f"{t['value']:.4f}"
        lines.append(f"| {t['number']} | {t['state']} | {value} | "
                     + " | ".join(_short(t["params"].get(n)) for n in names) + " |")
    if best:
        lines += ["", f"Best: val accuracy {best['value']:.4f} with {best['params']} ({best['run_dir']})"]
    report = {"study": out.name, "sampler": config.sampler, "trials": trials, "best": best}
    write_json(out / "sweep.json", report)
    write_text(out / "sweep.md", "\n".join(lines) + "\n")
    _plot(trials, names, out)
    return report


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


def _plot(trials: list[dict], names: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgefer.files import atomic_path

    done = [t for t in trials if t["value"] is not None]
    columns = 1 + len(names)
    fig, axes = plt.subplots(1, columns, figsize=(4 * columns, 3.5), dpi=110, squeeze=False)
    axes = axes[0]
    numbers = [t["number"] for t in done]
    values = [t["value"] for t in done]
    axes[0].plot(numbers, values, "o", label="trial")
    axes[0].plot(numbers, np.maximum.accumulate(values) if values else [], "-", label="best so far")
    axes[0].set(xlabel="trial", ylabel="val accuracy", title="objective over trials")
    axes[0].legend()
    for ax, name in zip(axes[1:], names):
        xs = [t["params"].get(name) for t in done]
        if xs and all(isinstance(x, (int, float)) for x in xs):
            ax.plot(xs, values, "o")
            if all(x > 0 for x in xs) and max(xs) / max(min(xs), 1e-12) > 50:
                ax.set_xscale("log")
        else:
            labels = sorted({str(x) for x in xs})
            ax.plot([labels.index(str(x)) for x in xs], values, "o")
            ax.set_xticks(range(len(labels)), labels)
        ax.set(xlabel=name, ylabel="val accuracy", title=name)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out / "sweep.png") as temp:
        fig.savefig(temp, format="png")
    plt.close(fig)


def grid_size(space: list[Dimension], points: int) -> int:
    return math.prod(len(d.grid(points)) for d in space)
