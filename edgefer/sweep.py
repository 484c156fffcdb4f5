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
import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.data import file_sha256
from edgefer.errors import EdgeferError
from edgefer.files import write_json, write_text
from edgefer.options import check, option

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


SAMPLERS = ("grid", "random", "tpe")


@dataclass
class SweepConfig:
    base: "object"                 # a TrainConfig: every trial starts from it
    space: list[Dimension]
    sampler: str = option("tpe", choices=SAMPLERS, help="grid, random or tpe.")
    trials: int | None = option(None, min=1, help="Trials to finish in total.", show_default="20; grid: its size")
    out: str = option("runs/sweep/study", help="Study folder (study.db, trials/, sweep.md, sweep.png).")
    prune: bool = option(True, help="Stop poor trials early (median rule on validation accuracy).")
    grid_points: int = option(3, min=2, help="Grid sampler: values per numeric range.")
    seed: int = option(0, help="Sampler seed (and every trial's training seed).")
    resume: bool = option(False, flag="--resume", help="Continue the study in --out (its search space must match).")
    heartbeat_seconds: int = option(60, min=1, help="RDB storages: a worker silent for twice this has its trial "
                                                    "failed and retried.")
    storage: str | None = option(None, show_default="sqlite:///<out>/study.db",
                                 help="Study storage: sqlite:///FILE, journal:FILE (many processes, one file system) or "
                                      "an RDB URL such as postgresql://user@host:5432/db (many machines).")
    workers: int = option(1, min=1, max=64, help="Local worker processes sharing the study.")

    def __post_init__(self):
        if self.trials is None:
            self.trials = grid_size(self.space, self.grid_points) if self.sampler == "grid" else 20


def _stale_retry() -> dict:
    """RDBStorage's retry of a stale-heartbeat trial, once, under the names of the installed Optuna (4.9 renamed
    the argument and the callback). Optuna's notes that heartbeats are experimental are not shown."""
    import inspect
    import warnings

    import optuna

    names = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if "heartbeat_stale_trial_callback" in names and hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):
        return {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
    return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=1)}


def _sampler(config: SweepConfig, offset: int = 0):
    """The sampler, seeded with --seed plus `offset`: a resumed study or a second worker that drew from the
    same seed would replay the first one's values (a resumed sweep repeated a trial's exact learning rate)."""
    import optuna

    seed = config.seed + offset
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "grid":
        return optuna.samplers.GridSampler({d.name: d.grid(config.grid_points) for d in config.space}, seed=seed)
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
            **_stale_retry())
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


def _counted(trial) -> bool:
    """Trials that use up --trials: every trial but the failed ones (they are retried) and the surplus
    trials a worker started after the study's total was reached (marked, pruned at once)."""
    return trial.state.name in (*FINISHED, "RUNNING") and not trial.user_attrs.get("surplus")


def _finished(study) -> int:
    return sum(t.state.name in FINISHED and not t.user_attrs.get("surplus") for t in study.get_trials(deepcopy=False))


def _started(study) -> int:
    """Finished trials plus those running now, on any machine: what --trials counts."""
    return sum(_counted(t) for t in study.get_trials(deepcopy=False))


def worker_id(pid: int | None = None) -> str:
    """A worker's name in the study: host and process id (a pid alone repeats across machines)."""
    import socket

    return f"{socket.gethostname()}:{pid or os.getpid()}"


# What a study's trials share beside the search space: `--resume` (or another machine joining) must train
# the same thing, or its trials would not be comparable.
BASE_FIELDS = ("model", "data", "recipe", "epochs", "batch_size", "limit", "input_size", "train_split", "val_split",
               "seed")


def run_sweep(config: SweepConfig, log=print) -> dict:
    """Run the study to `config.trials` finished trials, in this process or in `config.workers` local worker
    processes that share its storage; a worker that dies has its running trial failed and its share rerun."""
    import optuna

    check(config)
    sampler = _sampler(config)   # a bad sampler or storage fails before any folder is made
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
        if not exists:
            _check_out_folder(out, _where(config))
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
    _check_base(study, config.base, out)
    if isinstance(storage, optuna.storages.RDBStorage):
        optuna.storages.fail_stale_trials(study)   # a killed worker's trial is failed (and retried), not RUNNING
    for worker in _dead_workers_here(study):      # any storage: this machine's dead workers (kill -9, power cut)
        failed = fail_trials_of(study, worker)
        log(f"worker {worker} is gone; its running trial(s) {failed} failed and retried with the same values")
    done, started = _finished(study), _started(study)
    remaining = max(0, config.trials - started)
    log(f"study {name}: {done} finished trial(s) in {_where(config)}"
        + (f", {started - done} running elsewhere" if started > done else "") + f", running {remaining} more"
        + (f" on {config.workers} workers" if config.workers > 1 and remaining else ""))
    if remaining and config.workers == 1:
        _work(config, remaining, log)
    elif remaining:
        _run_workers(config, storage, log)
    return write_sweep_report(_study(config, storage), out, config)


def _check_out_folder(out: Path, where: str) -> None:
    """A new study gets a folder of its own: another sweep's trial runs and reports in --out would be mixed
    with this one's (its trial0 taken, its best named as this study's)."""
    held = [name for name in ("sweep.json", "trials") if (out / name).exists()]
    if held:
        raise SweepError(f"--out {out}: holds another sweep's {' and '.join(held)}, but no study {out.name!r} is in "
                         f"{where}; choose a new --out folder")


def _check_base(study, base, out: Path) -> None:
    """Every worker and every --resume trains what the study's first run trained (model, data, epochs ...).
    The data is compared by content: a relative and an absolute path, or two machines mounting it at different
    paths, are the same data."""
    mine = {name: getattr(base, name) for name in BASE_FIELDS}
    mine["data_sha256"] = _data_identity(base.data)
    stored = study.user_attrs.get("base")
    if stored is None:
        study.set_user_attr("base", mine)
        return
    if stored.get("data_sha256") and stored["data_sha256"] != mine["data_sha256"]:
        raise SweepError(f"--resume: the study in {out} trains on {stored['data']} (SHA-256 "
                         f"{stored['data_sha256'][:12]}), not on {mine['data']} ({mine['data_sha256'][:12]}); "
                         f"expected the same data (or choose a new --out)")
    for name in BASE_FIELDS:
        if name == "data" and stored.get("data_sha256"):
            continue
        if name in stored and stored[name] != mine[name]:
            raise SweepError(f"--resume: the study in {out} trains with --{name.replace('_', '-')} {stored[name]}, "
                             f"not {mine[name]}; expected the same options (or choose a new --out)")


def _data_identity(data: str) -> str:
    """SHA-256 of a CSV file, or of an image folder's listing (relative paths and sizes)."""
    path = Path(data)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file.stat().st_size}\n".encode())
    return digest.hexdigest()


def _where(config: SweepConfig) -> str:
    url = config.storage or str(Path(config.out) / "study.db")
    return url.split("@")[-1]   # never print a password


def _run_workers(config: SweepConfig, storage, log, rounds: int = 3) -> None:
    """Local worker processes on one study; the remaining trials are split between them, and whatever a
    dead worker left undone is split again (at most `rounds` times)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")   # fresh interpreters: no TensorFlow state is forked
    for _ in range(rounds):
        remaining = config.trials - _started(_study(config, storage))
        if remaining <= 0:
            return
        count = min(config.workers, remaining)
        shares = [remaining // count + (k < remaining % count) for k in range(count)]
        workers = [context.Process(target=_work, args=(config, share, None, k + 1), name=f"edgefer-sweep-{k}")
                   for k, share in enumerate(shares)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        for worker in workers:
            if worker.exitcode != 0:
                failed = fail_trials_of(_study(config, storage), worker_id(worker.pid))
                log(f"worker {worker.pid} died (exit {worker.exitcode}); its running trial(s) {failed} failed and "
                    "retried with the same values")


def _dead_workers_here(study) -> list[str]:
    """Workers on this machine that left RUNNING trials and no longer run."""
    import optuna
    import psutil

    host = worker_id().rsplit(":", 1)[0]
    found = set()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker", "")
        where, _, pid = worker.rpartition(":")
        if where == host and pid.isdigit() and not psutil.pid_exists(int(pid)):
            found.add(worker)
    return sorted(found)


def fail_trials_of(study, worker: str) -> list[int]:
    """Mark the RUNNING trials of `worker` (host:pid, edgefer.sweep.worker_id) as FAIL and queue each again with
    its values, once, as the heartbeat storages' retry does (any storage)."""
    import optuna

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get("worker") == worker:
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            failed.append(trial.number)
            if "retry_of" not in trial.user_attrs and trial.params:
                study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
    return failed


def _work(config: SweepConfig, n_trials: int, log=None, worker: int = 0) -> None:
    """One worker (`worker` 0: the in-process path, k: the k-th local process): `n_trials` trials of the shared
    study. Its sampler's seed moves on by the trials the study holds and by the worker's number."""
    import optuna

    from edgefer.train import train

    log = log or (lambda line: print(line, flush=True))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(config.out)
    storage = open_storage(config)
    held = len(_study(config, storage).get_trials(deepcopy=False))
    study = _study(config, storage, _sampler(config, offset=held + 1009 * worker))

    def objective(trial):
        trial.set_user_attr("worker", worker_id())
        trial.set_user_attr("worker_pid", os.getpid())
        before = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and _counted(t)]
        if len(before) >= config.trials:   # another machine started the study's last trial first
            trial.set_user_attr("surplus", True)
            study.stop()
            raise optuna.TrialPruned("the study has its --trials already")
        params = {d.name: d.suggest(trial) for d in config.space}
        run_config = trial_config(config.base, params, out, trial.number)
        trial.set_user_attr("run_dir", str(Path(run_config.project) / run_config.name))

        def report(row, improved):
            trial.report(row["val_accuracy"], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"val_accuracy {row['val_accuracy']:.4f} at epoch {row['epoch']}")

        result = train(run_config, log=lambda *_: None, on_epoch=report, verbose=0)
        trial.set_user_attr("run_dir", str(result.run_dir))   # where it really went
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

    kept = [t for t in study.trials if not t.user_attrs.get("surplus")]
    trials = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
               "run_dir": t.user_attrs.get("run_dir"), "retry_of": _retry_of(t)} for t in kept]
    complete = [t for t in kept if t.state == optuna.trial.TrialState.COMPLETE]
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
    _plot(trials, names, out, {d.name: d.kind for d in config.space})
    return report


def _retry_of(trial) -> int | None:
    """The failed trial this one repeats: a dead local worker's (edgefer) or a stale heartbeat's (Optuna)."""
    if "retry_of" in trial.user_attrs:
        return trial.user_attrs["retry_of"]
    history = trial.system_attrs.get("retry_history")
    return history[-1] if history else None


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


def _plot(trials: list[dict], names: list[str], out: Path, kinds: dict[str, str]) -> None:
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
            if kinds.get(name) == "log":   # searched on a log scale: drawn on one
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
