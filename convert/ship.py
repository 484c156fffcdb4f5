"""Make a trained run edgefer's shipped model: weights-only .keras in the package, a JSON card with the
recipe, data checksum, date, hardware and measured metrics, every exported format, and the plots.

    python -m edgefer.convert.ship runs/train/shipped_best --data ../shared/data/fer2013_train_publictest.csv.gz
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import edgefer
from edgefer.data import file_sha256
from edgefer.evaluation import EvaluateConfig, evaluate_model
from edgefer.files import atomic_path, read_json, write_json
from edgefer.runtime import DEFAULT_KERAS_MODEL, sidecar_path
from edgefer.machine import machine_description

REPORTS = Path(__file__).resolve().parents[1] / "profiles" / "shipped_model"


def lineage(run_dir: Path) -> list[dict]:
    """The runs a run started from (--weights) or distilled from (--teacher), found through their run
    directories (runs/train/<name>/weights/*.keras), recursively: what it takes to reproduce a staged model."""
    args = read_json(run_dir / "args.json")
    sources = [("weights", args.get("init_weights"))] + [("teacher", path) for path in args.get("teacher") or []]
    stages = []
    for role, path in sources:
        if not path:
            continue
        source_run = Path(path).parent.parent
        if not (source_run / "args.json").exists():
            stages.append({"role": role, "file": path, "run": None})
            continue
        source_args, metrics = read_json(source_run / "args.json"), read_json(source_run / "metrics.json")
        stages.append({"role": role, "file": path, "run": source_run.name, "recipe": source_args,
                       "epochs_run": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
                       "train_seconds": metrics["train_seconds"], "parameters": metrics["parameters"],
                       "splits": {name: {"accuracy": split["accuracy"], "macro_f1": split["macro_f1"]}
                                  for name, split in metrics["splits"].items()},
                       "stages": lineage(source_run)})
    return stages


def _copy_run_records(run_dir: Path, destination: Path, split: str) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("history.csv", "curves.png", f"confusion_{split}.png", "args.json", "metrics.json"):
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, destination / name)


def ship(run_dir: str | os.PathLike, data: str, command: str | list[str], target: Path = DEFAULT_KERAS_MODEL,
         reports: Path = REPORTS, trained_on: str | None = None, limit: int | None = None) -> dict:
    """Copy a run's deployable model into the package with its card; `trained_on` describes the training
    machine of runs (or of their earlier stages) whose metrics.json predates the recorded one."""
    import keras

    run_dir = Path(run_dir)
    args, state, metrics = (read_json(run_dir / n) for n in ("args.json", "state.json", "metrics.json"))
    model = keras.saving.load_model(run_dir / "weights" / "model.keras", compile=False)
    if not _same_weights(target, model):  # a re-ship keeps the bytes the exports' source_sha256 names
        with atomic_path(target) as temp:
            model.save(temp)  # weights only: no optimizer state
    split = args["val_split"]
    plain = evaluate_model(EvaluateConfig(target, data, split, project=reports, limit=limit)).metrics
    flipped = evaluate_model(EvaluateConfig(target, data, split, tta=True, project=reports, limit=limit)).metrics
    card = {
        "name": "mini_xception", "version": f"fer2013-{time.strftime('%Y%m%d')}", "format": "keras",
        "class_names": list(edgefer.CLASS_NAMES), "input_size": 48, "channels": 1,
        "input_scale": 1 / 127.5, "input_offset": -1.0, "parameters": int(model.count_params()),
        "trained_by": command, "recipe": args, "stages": lineage(run_dir),
        "data": {"file": Path(data).name, "sha256": file_sha256(data), "train_split": args["train_split"],
                 "selected_on": split},
        "date": time.strftime("%Y-%m-%d"), "hardware": _hardware(metrics.get("machine"), trained_on),
        "training": {"epochs": state["epoch"], "best_epoch": state["best_epoch"],
                     "train_seconds": metrics["train_seconds"], "images_per_second": metrics["train_images_per_second"],
                     "keras_backend": metrics["keras_backend"]},
        "metrics": {split: plain.as_dict(), f"{split} (flip TTA)": flipped.as_dict()},
        "file_kb": round(target.stat().st_size / 1024, 1), "edgefer_version": edgefer.__version__,
    }
    write_json(sidecar_path(target), card)
    _copy_run_records(run_dir, reports, split)
    for stage in _flatten(card["stages"]):
        if stage["run"]:
            _copy_run_records(Path(stage["file"]).parent.parent, reports / "stages" / stage["run"], split)
    return card


def _hardware(recorded: dict | None, trained_on: str | None) -> dict:
    """The run's recorded training machine; `trained_on` describes it when not recorded, or else the
    machine of the earlier stages (--weights) that did not record theirs."""
    hardware = {"training": recorded or trained_on or "not recorded", "evaluation": machine_description()}
    if recorded and trained_on:
        hardware["earlier_stages"] = trained_on
    return hardware


def _same_weights(path: Path, model) -> bool:
    import keras
    import numpy as np

    if not path.exists():
        return False
    current = keras.saving.load_model(path, compile=False).get_weights()
    wanted = model.get_weights()
    return len(current) == len(wanted) and all(
        a.shape == b.shape and np.array_equal(a, b) for a, b in zip(current, wanted))


def _flatten(stages: list[dict]) -> list[dict]:
    return [entry for stage in stages for entry in [stage] + _flatten(stage.get("stages", []))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--data", required=True)
    parser.add_argument("--command", action="append", default=[],
                        help="an `edgefer train` command that produced the model; repeat for each stage, in order")
    parser.add_argument("--trained-on", help="the training machine, for runs (or their earlier stages) that did not record it")
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args()
    card = ship(args.run_dir, args.data, args.command, trained_on=args.trained_on)
    print(json.dumps({k: card[k] for k in ("version", "parameters", "file_kb", "training")}, indent=2))
    for name, values in card["metrics"].items():
        print(f"{name}: accuracy {values['accuracy']:.4f}, macro-F1 {values['macro_f1']:.4f}")
    if not args.no_export:
        from edgefer.convert.export import export_model, format_table

        rows, folder = export_model(DEFAULT_KERAS_MODEL, DEFAULT_KERAS_MODEL.parent, data=args.data, log=print)
        print(format_table(rows))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
