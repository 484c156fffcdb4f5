"""`edgefer profile`: the paper's tables (2, 3, 4/5) and the seed study's CPU-vs-GPU table, measured.

Each stage (train, test, export, inference per runtime) runs in a child process
(`python -m edgefer.profile.workers <stage> ...`) while `edgefer.profile.sampler` watches it, so the
measurement covers exactly that work. Results go to <out>/: summary.md, summary.json, tables as CSV,
samples_*.csv, PNGs; the trained models and exports (large) to <out>/work/.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from edgefer.data import DATA_HELP
from edgefer.errors import EdgeferError
from edgefer.files import write_json, write_text
from edgefer.machine import machine_description
from edgefer.options import check, option
from edgefer.profile.report import render_markdown, write_csv_tables, write_plots
from edgefer.profile.sampler import StageMeasurement, measure_command
from edgefer.runtime.formats import FORMATS
from edgefer.runtime.timing import command as timing_command

# the runtimes of the edge table, by the format each reads (edgefer.runtime.formats)
RUNTIMES = {"keras": FORMATS["keras"].ending, "tflite_float32": FORMATS["float32"].ending,
            "tflite_int8": FORMATS["int8"].ending, "onnx": FORMATS["onnx"].ending}


@dataclass
class ProfileConfig:
    data: str = option(help=DATA_HELP, show_default=False)
    models: list[str] | str = option("all", flag="--model",
                                     help="Model to profile (mini_xception, vgg, resnet50, cnn), a comma list or 'all'.")
    epochs: int = option(1, min=1, help="Training epochs per model.")
    train_images: int = option(4096, min=0, help="Training images per epoch (the step budget; 0 = all).")
    test_images: int = option(0, min=0, help="Validation images for the test stage (0 = the whole split).")
    batch_size: int = option(32, min=2, help="Batch size.",
                             expected="at least 2 (TensorFlow 2.21 crashes training on single-image batches)")
    interval: float = option(0.5, min=0.01, help="Sampling interval in seconds.")
    out: str = option("runs/profile", help="Output folder.")
    edge: bool = option(True, help="Also export and measure size, latency and inference memory per runtime.")
    devices: list[str] | str = option("", help="'cpu,gpu': also the CPU-vs-GPU training-time table (GPU columns "
                                               "say when absent).")
    device_epochs: list[int] | str = option("2", help="Epoch counts for the CPU-vs-GPU table, e.g. 2,10,30,50.")
    timeout: float = 3600

    def __post_init__(self):
        """The command line's comma lists (--model all, --devices cpu,gpu, --device-epochs 2,10) as lists."""
        from edgefer.models import MODELS

        if isinstance(self.models, str):
            self.models = list(MODELS) if self.models == "all" else _items(self.models)
        if isinstance(self.devices, str):
            self.devices = _items(self.devices)
        if isinstance(self.device_epochs, str):
            try:
                self.device_epochs = [int(v) for v in _items(self.device_epochs)]
            except ValueError:
                raise EdgeferError(f"--device-epochs {self.device_epochs!r}: expected comma-separated integers, "
                                   f"e.g. 2,10") from None

    def validate(self) -> None:
        from edgefer.models import check_model_name

        check(self)
        for name in self.models:
            check_model_name(name)
        if self.train_images and self.train_images < self.batch_size:
            raise EdgeferError(f"--train-images {self.train_images} is smaller than one batch ({self.batch_size})")
        for device in self.devices:
            if device not in ("cpu", "gpu"):
                raise EdgeferError(f"--devices: unknown device {device!r}; expected cpu and/or gpu")
        if not Path(self.data).exists():
            raise FileNotFoundError(f"{self.data}: data not found (expected the FER-2013 CSV or an image folder)")


def _items(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _worker(stage: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "edgefer.profile.workers", stage, *map(str, args)]


def _child_env(device: str = "cpu") -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _result(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def run_profile(config: ProfileConfig, log=print) -> dict:
    config.validate()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": machine_description(), "config": config.__dict__, "models": {}}
    cpu_runs: dict[tuple[str, int], tuple[StageMeasurement, dict]] = {}   # the training stage, for the device table
    failed: list[str] = []
    for name in config.models:
        log(f"[{name}] training ({config.epochs} epoch(s), {config.train_images or 'all'} images)")
        entry = report["models"][name] = {}
        work = out / "work" / name  # models, exports, run folders: large, kept apart from the record
        train = measure_command(
            _worker("train", name, config.data, work, config.epochs, config.train_images or 0, config.batch_size),
            config.interval, _child_env(), config.timeout)
        trained = _result(work / "train.json")
        cpu_runs[(name, config.epochs)] = (train, trained)
        _save_stage(out, name, "train", train, entry, trained)
        entry.update(layers=trained.get("layers"), history=trained.get("history"), backend=trained.get("backend"))
        if not train.ok:
            log(f"[{name}] training failed (exit {train.returncode}); samples kept")
            failed.append(f"{name} training (exit {train.returncode})")
            continue
        log(f"[{name}] testing")
        test = measure_command(_worker("test", work / "model.keras", config.data, config.test_images or 0, work),
                               config.interval, _child_env(), config.timeout)
        if not test.ok:
            failed.append(f"{name} testing (exit {test.returncode})")
        entry["test"] = _result(work / "test.json")
        _save_stage(out, name, "test", test, entry, entry["test"])
        if config.edge:
            entry["edge"] = _edge(config, work, log, name)
    if config.devices:
        report["devices"] = _device_table(config, out, log, cpu_runs)
    write_json(out / "summary.json", report)
    write_text(out / "summary.md", render_markdown(report))
    write_csv_tables(report, out)
    write_plots(report, out)
    if failed:   # the record is written (with the failed stages' samples), and the command still fails
        raise EdgeferError(f"profile: {', '.join(failed)} failed; what was measured is in {out / 'summary.md'}",
                           exit_code=1)
    return report


def _save_stage(out: Path, model: str, stage: str, measurement: StageMeasurement, entry: dict,
                reported: dict | None = None) -> None:
    """Record a stage; `reported` is the worker's result, whose own high-water mark can exceed the samples."""
    measurement.peak_rss_mb = max(measurement.peak_rss_mb, (reported or {}).get("self_peak_rss_mb", 0.0))
    write_text(out / f"samples_{model}_{stage}.csv", measurement.samples_csv())
    entry.setdefault("stages", {})[stage] = measurement.summary()
    if not measurement.ok:
        entry["stages"][stage]["error_tail"] = measurement.output_tail[-1500:]


def _edge(config: ProfileConfig, work: Path, log, name: str) -> dict:
    log(f"[{name}] exporting float32, int8, onnx")
    export = measure_command(_worker("export", work / "model.keras", config.data, work / "export"),
                             config.interval, _child_env(), config.timeout)
    edge: dict = {"export_wall_s": round(export.wall_s, 1), "runtimes": {}}
    if not export.ok:
        edge["error_tail"] = export.output_tail[-1500:]
        return edge
    for runtime, suffix in RUNTIMES.items():
        path = work / "model.keras" if runtime == "keras" else work / "export" / f"model{suffix}"
        row = {"size_kb": round(path.stat().st_size / 1024, 1)} if path.exists() else {}
        for threads in (1, psutil.cpu_count() or 1):
            result_path = work / f"infer_{runtime}_{threads}.json"
            run = measure_command(timing_command(path, threads, result_path), config.interval, _child_env())
            timing = _result(result_path)
            row[f"ms_per_face_{threads}t"] = timing.get("ms_per_face")
            row[f"faces_per_s_{threads}t"] = timing.get("faces_per_s")
            # a short child can end before the first sample: it reports its own high-water mark too
            row[f"peak_rss_mb_{threads}t"] = round(max(run.peak_rss_mb, timing.get("self_peak_rss_mb", 0.0)), 1)
            row["backend"] = timing.get("backend")
        edge["runtimes"][runtime] = row
        log(f"[{name}] {runtime} ({row.get('backend')}): {row.get('size_kb', '-')} KB, "
            f"{row.get('ms_per_face_1t') or float('nan'):.3f} ms/face on 1 thread, "
            f"peak {row.get('peak_rss_mb_1t', '-')} MB")
    return edge


def gpu_present() -> bool:
    """A GPU that Keras' backend can use (TensorFlow here; JAX on the lent GPU machine)."""
    probe = ("import keras, sys\nb = keras.backend.backend()\n"
             "if b == 'tensorflow':\n import tensorflow as tf; n = len(tf.config.list_physical_devices('GPU'))\n"
             "elif b == 'jax':\n import jax; n = len([d for d in jax.devices() if d.platform == 'gpu'])\n"
             "else:\n import torch; n = torch.cuda.device_count()\nsys.exit(0 if n else 3)")
    import subprocess

    done = subprocess.run([sys.executable, "-c", probe], env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                          capture_output=True, timeout=300)
    return done.returncode == 0


def _device_table(config: ProfileConfig, out: Path, log, cpu_runs: dict) -> list[dict]:
    """The seed study's Table I: training time per epoch count on CPU and GPU, speedup and accuracy. A CPU
    row at the training stage's epoch count is that stage (the same command), not a second run."""
    rows, has_gpu = [], gpu_present()
    for name in config.models:
        for epochs in config.device_epochs:
            row = {"model": name, "epochs": epochs}
            for device in config.devices:
                if device == "gpu" and not has_gpu:
                    row["gpu"] = "no GPU present"
                    continue
                if device == "cpu" and (name, epochs) in cpu_runs:
                    run, trained = cpu_runs[(name, epochs)]
                else:
                    work = out / "work" / f"{name}_{device}_{epochs}ep"
                    log(f"[{name}] {epochs} epoch(s) on {device}")
                    run = measure_command(_worker("train", name, config.data, work, epochs, config.train_images or 0,
                                                  config.batch_size), config.interval, _child_env(device),
                                          config.timeout)
                    trained = _result(work / "train.json")
                row[device] = {"seconds": round(run.wall_s, 1), "train_seconds": trained.get("train_seconds"),
                               "s_per_epoch": round((trained.get("train_seconds") or 0) / epochs, 2),
                               "val_accuracy": trained.get("val_accuracy"), "backend": trained.get("backend"),
                               "ok": run.ok}
            cpu, gpu = row.get("cpu"), row.get("gpu")
            if isinstance(cpu, dict) and isinstance(gpu, dict) and gpu.get("train_seconds"):
                row["speedup"] = round(cpu["train_seconds"] / gpu["train_seconds"], 2)
            rows.append(row)
    return rows
