"""The child processes of `edgefer profile`: each stage runs alone in `python -m edgefer.profile.workers
STAGE ARGS...` while the sampler watches it, so the measurement covers exactly that work."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from edgefer.files import write_json
from edgefer.machine import high_water_mark


def _train_worker(model, data, work, epochs, train_images, batch_size) -> None:
    from edgefer.models import build_model, layer_report
    from edgefer.train import config_from_recipe, read_history, train

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
    from edgefer.runtime import load_classifier
    from edgefer.metrics import compute_metrics

    faces = load_split(DataSpec(data, limit=int(test_images) or None), "PublicTest" if is_csv(data) else "test")
    classifier = load_classifier(model_path)
    metrics = compute_metrics(classifier.predict(faces.images), faces.labels)
    write_json(Path(work) / "test.json", {"accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1,
                                          "loss": metrics.loss, "faces": len(faces),
                                          "self_peak_rss_mb": high_water_mark(os.getpid()) / 1e6})


def _export_worker(model_path, data, out) -> None:
    from edgefer.convert.export import export_model

    export_model(Path(model_path), Path(out), ["float32", "int8", "onnx"], data, limit=500, calibration=300,
                 threshold=100.0, log=lambda *_: None)


def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgefer.profile.workers", description="edgefer profile workers")
    parser.add_argument("stage", choices=["train", "test", "export"])
    parser.add_argument("args", nargs="*")
    parsed = parser.parse_args(argv)
    {"train": _train_worker, "test": _test_worker, "export": _export_worker}[parsed.stage](*parsed.args)


if __name__ == "__main__":
    _main(sys.argv[1:])
