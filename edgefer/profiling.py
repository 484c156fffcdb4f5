"""`edgefer profile`: the paper's tables (2, 3, 4/5) and the seed study's CPU-vs-GPU table, measured.

Each stage (train, test, export, inference per runtime) runs in a child process
(`python -m edgefer.profiling <stage> ...`) while edgefer.sampler watches it, so the measurement covers
exactly that work. Results go to <out>/: summary.md, summary.json, tables as CSV, samples_*.csv, PNGs;
the trained models and exports (large) to <out>/work/.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from edgefer.files import write_json, write_text
from edgefer.sampler import StageMeasurement, high_water_mark, measure_command

PAPER = Path(__file__).resolve().parents[1] / "profiles" / "paper.json"
RUNTIMES = {"keras": ".keras", "tflite_float32": "_float32.tflite", "tflite_int8": "_int8.tflite", "onnx": ".onnx"}


@dataclass
class ProfileConfig:
    models: list[str]
    data: str
    epochs: int = 1
    train_images: int | None = 4096     # the step budget: training images per epoch
    test_images: int | None = None      # None: the whole validation split
    batch_size: int = 32
    interval: float = 0.5
    out: str = "runs/profile"
    edge: bool = True                   # export and measure sizes, latency, inference RSS
    devices: list[str] = field(default_factory=list)   # non-empty: also the CPU-vs-GPU table
    device_epochs: list[int] = field(default_factory=lambda: [2])
    timeout: float = 3600

    def validate(self) -> None:
        from edgefer.models import check_model_name

        for name in self.models:
            check_model_name(name)
        if self.interval <= 0:
            raise ValueError(f"--interval must be positive seconds, got {self.interval}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("--epochs and --batch-size must be at least 1")
        if self.train_images is not None and self.train_images < self.batch_size:
            raise ValueError(f"--train-images {self.train_images} is smaller than one batch ({self.batch_size})")
        for device in self.devices:
            if device not in ("cpu", "gpu"):
                raise ValueError(f"unknown device {device!r}; expected cpu and/or gpu")
        if not Path(self.data).exists():
            raise FileNotFoundError(f"{self.data}: data not found (expected the FER-2013 CSV or an image folder)")


def _worker(stage: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "edgefer.profiling", stage, *map(str, args)]


def _child_env(device: str = "cpu") -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _result(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def machine_description() -> dict:
    return {"processor": platform.processor() or platform.machine(), "cores": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1), "python": platform.python_version(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d")}


def run_profile(config: ProfileConfig, log=print) -> dict:
    config.validate()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": machine_description(), "config": config.__dict__, "models": {}}
    for name in config.models:
        log(f"[{name}] training ({config.epochs} epoch(s), {config.train_images or 'all'} images)")
        entry = report["models"][name] = {}
        work = out / "work" / name  # models, exports, run folders: large, kept apart from the record
        train = measure_command(
            _worker("train", name, config.data, work, config.epochs, config.train_images or 0, config.batch_size),
            config.interval, _child_env(), config.timeout)
        trained = _result(work / "train.json")
        _save_stage(out, name, "train", train, entry, trained)
        entry.update(layers=trained.get("layers"), history=trained.get("history"), backend=trained.get("backend"))
        if not train.ok:
            log(f"[{name}] training failed (exit {train.returncode}); samples kept")
            continue
        log(f"[{name}] testing")
        test = measure_command(_worker("test", work / "model.keras", config.data, config.test_images or 0, work),
                               config.interval, _child_env(), config.timeout)
        entry["test"] = _result(work / "test.json")
        _save_stage(out, name, "test", test, entry, entry["test"])
        if config.edge:
            entry["edge"] = _edge(config, work, log, name)
    if config.devices:
        report["devices"] = _device_table(config, out, log)
    write_json(out / "summary.json", report)
    write_text(out / "summary.md", render_markdown(report))
    _write_csv_tables(report, out)
    _plots(report, out)
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
    export = measure_command(
        [sys.executable, "-m", "edgefer.cli", "export", str(work / "model.keras"), "--data", config.data,
         "--formats", "float32,int8,onnx", "--out", str(work / "export"), "--limit", "500", "--calibration", "300",
         "--threshold", "100"],
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
            run = measure_command(_worker("infer", path, threads, result_path), config.interval, _child_env())
            timing = _result(result_path)
            row[f"ms_per_face_{threads}t"] = timing.get("ms_per_face")
            row[f"faces_per_s_{threads}t"] = timing.get("faces_per_s")
            # a short child can end before the first sample: it reports its own high-water mark too
            row[f"peak_rss_mb_{threads}t"] = round(max(run.peak_rss_mb, timing.get("self_peak_rss_mb", 0.0)), 1)
            row["backend"] = timing.get("backend")
        edge["runtimes"][runtime] = row
        log(f"[{name}] {runtime}: {row}")
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


def _device_table(config: ProfileConfig, out: Path, log) -> list[dict]:
    """The seed study's Table I: training time per epoch count on CPU and GPU, speedup and accuracy."""
    rows, has_gpu = [], gpu_present()
    for name in config.models:
        for epochs in config.device_epochs:
            row = {"model": name, "epochs": epochs}
            for device in config.devices:
                if device == "gpu" and not has_gpu:
                    row["gpu"] = "no GPU present"
                    continue
                work = out / "work" / f"{name}_{device}_{epochs}ep"
                log(f"[{name}] {epochs} epoch(s) on {device}")
                run = measure_command(_worker("train", name, config.data, work, epochs, config.train_images or 0,
                                              config.batch_size), config.interval, _child_env(device), config.timeout)
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


# --------------------------------------------------------------------------- tables and plots


def _paper() -> dict:
    return json.loads(PAPER.read_text()) if PAPER.exists() else {}


def render_markdown(report: dict) -> str:
    m, paper = report["machine"], _paper().get("models", {})
    lines = [f"# edgefer profile ({m['date']})", "",
             f"Machine: {m['processor']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}.",
             f"Budget: {report['config']['epochs']} epoch(s) of {report['config']['train_images'] or 'all'} "
             f"training images, batch {report['config']['batch_size']}, sampling every {report['config']['interval']} s.",
             "", "## Table 3: layers and parameters", "",
             "| model | conv | pooling | dense | parameters | paper: parameters |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, e in report["models"].items():
        layers = e.get("layers") or {}
        lines.append(f"| {name} | {layers.get('conv_layers', '-')} | {layers.get('pooling_layers', '-')} | "
                     f"{layers.get('dense_layers', '-')} | {layers.get('parameters', 0):,} | "
                     f"{_fmt_int(paper.get(name, {}).get('parameters'))} |")
    lines += ["", "## Table 2: accuracy and loss (validation = PublicTest)", "",
              "| model | train acc | val acc | val loss | test acc (fresh process) | paper: test acc |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, e in report["models"].items():
        h = (e.get("history") or [{}])[-1]
        lines.append(f"| {name} | {_fmt(h.get('accuracy'))} | {_fmt(h.get('val_accuracy'))} | {_fmt(h.get('val_loss'))} | "
                     f"{_fmt((e.get('test') or {}).get('accuracy'))} | {_fmt(paper.get(name, {}).get('accuracy'))} |")
    for stage, title in (("train", "Table 4: hardware occupation while training"),
                         ("test", "Table 5: hardware occupation while testing")):
        lines += ["", f"## {title}", "",
                  "| model | wall s | CPU % (machine) mean / peak | CPU % per core mean / peak | user % | system % "
                  "| system-wide user % / sys % | MEM % peak | peak RSS MB | sampler overhead (% of a core) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, e in report["models"].items():
            s = (e.get("stages") or {}).get(stage)
            if not s:
                lines.append(f"| {name} | not run | | | | | | | | |")
                continue
            status = "" if s["returncode"] == 0 else f" (exit {s['returncode']})"
            lines.append(
                f"| {name}{status} | {s['wall_s']:.1f} | {s['cpu_pct_total']:.1f} / {_fmt(s['cpu_pct_peak'], 1)} | "
                f"{s['cpu_pct_core_total']:.1f} / {_fmt(s['cpu_pct_core_peak'], 1)} | {s['user_pct_total']:.1f} | "
                f"{s['sys_pct_total']:.1f} | {_fmt(s['sys_user_pct_mean'], 1)} / {_fmt(s['sys_sys_pct_mean'], 1)} | "
                f"{s['mem_pct_peak']:.2f} | {s['peak_rss_mb']:.0f} | {s['sampler_overhead_pct_core']:.2f} |")
    edge_rows = [(n, r, v) for n, e in report["models"].items() for r, v in (e.get("edge") or {}).get("runtimes", {}).items()]
    if edge_rows:
        cores = report["machine"]["cores"]
        lines += ["", "## For the edge: size, latency and memory per runtime", "",
                  f"| model | runtime | size KB | ms/face (1 thread) | faces/s (1 thread) | ms/face ({cores} threads) "
                  f"| faces/s ({cores} threads) | inference-only peak RSS MB | paper: weights KB |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, runtime, r in edge_rows:
            paper_kb = paper.get(name, {}).get("weights_kb") if runtime == "keras" else None
            lines.append(f"| {name} | {runtime} ({r.get('backend')}) | {_fmt(r.get('size_kb'), 1)} | "
                         f"{_fmt(r.get('ms_per_face_1t'), 3)} | {_fmt(r.get('faces_per_s_1t'), 0)} | "
                         f"{_fmt(r.get(f'ms_per_face_{cores}t'), 3)} | {_fmt(r.get(f'faces_per_s_{cores}t'), 0)} | "
                         f"{_fmt(r.get('peak_rss_mb_1t'), 0)} | {_fmt(paper_kb, 1)} |")
    if report.get("devices"):
        lines += ["", "## CPU vs GPU (the seed study's Table I)", "",
                  "| model | epochs | CPU s/epoch | CPU total s | CPU val acc | GPU | speedup |",
                  "| --- | ---: | ---: | ---: | ---: | --- | ---: |"]
        for row in report["devices"]:
            cpu = row.get("cpu") or {}
            gpu = row.get("gpu")
            gpu_text = gpu if isinstance(gpu, str) else (
                f"{gpu['s_per_epoch']} s/epoch, {gpu['train_seconds']} s, acc {_fmt(gpu['val_accuracy'])} ({gpu['backend']})"
                if gpu else "not asked")
            lines.append(f"| {row['model']} | {row['epochs']} | {_fmt(cpu.get('s_per_epoch'), 2)} | "
                         f"{_fmt(cpu.get('train_seconds'), 1)} | {_fmt(cpu.get('val_accuracy'))} | {gpu_text} | "
                         f"{_fmt(row.get('speedup'), 2)} |")
    lines += ["", "Definitions: CPU % (machine) = process CPU time / wall time / cores; per core: 100 = one core; "
              "user/system % = the process's user/system CPU time as a share of the machine; system-wide = all "
              "processes (psutil); MEM % = peak RSS / total memory. Means and peaks are over samples; "
              "totals come from the child's rusage. Paper columns: '-' where the paper's value is not in "
              "profiles/paper.json.", ""]
    return "\n".join(lines)


def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fmt_int(value) -> str:
    return "-" if value is None else f"{value:,}"


def _write_csv_tables(report: dict, out: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", "stage", "wall_s", "cpu_pct_total", "cpu_pct_core_total", "user_pct_total",
                     "sys_pct_total", "cpu_pct_peak", "mem_pct_peak", "peak_rss_mb", "returncode"])
    for name, e in report["models"].items():
        for stage, s in (e.get("stages") or {}).items():
            writer.writerow([name, stage, s["wall_s"], s["cpu_pct_total"], s["cpu_pct_core_total"], s["user_pct_total"],
                             s["sys_pct_total"], s["cpu_pct_peak"], s["mem_pct_peak"], s["peak_rss_mb"], s["returncode"]])
    write_text(out / "occupation.csv", buffer.getvalue())


def _plots(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgefer.files import atomic_path

    models = {n: e for n, e in report["models"].items() if e.get("layers")}
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, e in models.items():
        accuracy = (e.get("test") or {}).get("accuracy")
        if accuracy is not None:
            ax.scatter(e["layers"]["parameters"], accuracy * 100, s=40)
            ax.annotate(name, (e["layers"]["parameters"], accuracy * 100), textcoords="offset points", xytext=(5, 5))
    ax.set(xscale="log", xlabel="parameters", ylabel="PublicTest accuracy (%)",
           title="parameters vs accuracy (profile budget)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out / "params_vs_accuracy.png") as temp:
        fig.savefig(temp, format="png")
    plt.close(fig)
    for stage in ("train", "test"):
        fig, (cpu_ax, mem_ax) = plt.subplots(1, 2, figsize=(11, 4), dpi=120)
        for name in report["models"]:
            path = out / f"samples_{name}_{stage}.csv"
            if not path.exists():
                continue
            with open(path) as handle:
                rows = list(csv.DictReader(handle))
            t = [float(r["t"]) for r in rows]
            cpu_ax.plot(t, [float(r["cpu_pct_core"]) for r in rows], label=name)
            mem_ax.plot(t, [float(r["rss_mb"]) for r in rows], label=name)
        cpu_ax.set(xlabel="seconds", ylabel="CPU % (100 = one core)", title=f"CPU while {stage}ing")
        mem_ax.set(xlabel="seconds", ylabel="RSS MB", title=f"memory while {stage}ing")
        for ax in (cpu_ax, mem_ax):
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        with atomic_path(out / f"occupation_{stage}.png") as temp:
            fig.savefig(temp, format="png")
        plt.close(fig)


# --------------------------------------------------------------------------- child workers


def _train_worker(model, data, work, epochs, train_images, batch_size) -> None:
    from edgefer.models import build_model, layer_report
    from edgefer.training import config_from_recipe, read_history, train

    import keras

    config = config_from_recipe("paper", model=model, data=data, epochs=int(epochs), batch_size=int(batch_size),
                                limit=int(train_images) or None, project=str(work), name="run")
    result = train(config, verbose=0, log=lambda *_: None)
    Path(work).mkdir(parents=True, exist_ok=True)
    # training's deployable model: the best epoch without the optimizer state that checkpoints carry
    shutil.copyfile(result.run_dir / "weights" / "model.keras", Path(work) / "model.keras")
    history = read_history(result.run_dir / "history.csv")
    write_json(Path(work) / "train.json", {
        "layers": layer_report(build_model(model)).as_dict(), "history": history,
        "train_seconds": round(result.seconds, 2), "val_accuracy": history[-1]["val_accuracy"] if history else None,
        "backend": keras.backend.backend(), "self_peak_rss_mb": high_water_mark(os.getpid()) / 1e6,
    })


def _test_worker(model_path, data, test_images, work) -> None:
    from edgefer.data import DataSpec, is_csv, load_split
    from edgefer.inference import load_classifier
    from edgefer.metrics import compute_metrics

    faces = load_split(DataSpec(data, limit=int(test_images) or None), "PublicTest" if is_csv(data) else "test")
    classifier = load_classifier(model_path)
    metrics = compute_metrics(classifier.predict(faces.images), faces.labels)
    write_json(Path(work) / "test.json", {"accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1,
                                          "loss": metrics.loss, "faces": len(faces),
                                          "self_peak_rss_mb": high_water_mark(os.getpid()) / 1e6})


def _infer_worker(model_path, threads, result_path) -> None:
    import numpy as np

    from edgefer.inference import load_classifier, time_single_face

    classifier = load_classifier(model_path, threads=int(threads))
    faces = np.random.default_rng(0).integers(0, 256, (512, classifier.info.input_size, classifier.info.input_size),
                                              dtype=np.uint8)
    ms = time_single_face(classifier, repeats=200)
    start = time.perf_counter()
    classifier.predict(faces)
    rate = len(faces) / (time.perf_counter() - start)
    write_json(result_path, {"ms_per_face": ms, "faces_per_s": rate, "backend": classifier.backend,
                             "self_peak_rss_mb": high_water_mark(os.getpid()) / 1e6})


def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgefer.profiling", description="edgefer profile workers")
    parser.add_argument("stage", choices=["train", "test", "infer"])
    parser.add_argument("args", nargs="*")
    parsed = parser.parse_args(argv)
    {"train": _train_worker, "test": _test_worker, "infer": _infer_worker}[parsed.stage](*parsed.args)


if __name__ == "__main__":
    _main(sys.argv[1:])
