"""Uniform weight averages ("soups") of second-stage runs that share stage 1's basin, 2026-11-25.

A record of a negative result, not part of edgefer: each soup's batch-norm statistics are recomputed on
4,096 training faces (as `--precise-bn` does) and it is scored on PublicTest. Needs the run folders under
runs/train/ of this machine.  Run: python profiles/experiments/soup/soup.py > profiles/experiments/soup/soup.txt
"""

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edgefer.data import DataSpec, load_split  # noqa: E402
from edgefer.metrics import compute_metrics  # noqa: E402
from edgefer.models import load_face_model  # noqa: E402
from edgefer.runtime.keras import predict_probabilities
from edgefer.train.keras_utils import recalibrate_batchnorm  # noqa: E402

DATA = "../shared/data/fer2013_train_publictest.csv.gz"
RUNS = {"polish": "runs/train/polish/weights/best.keras", "flip": "runs/train/flip_ft/weights/best.keras",
        "2e4": "runs/train/noaug_ft_2e4/weights/best.keras", "distil": "runs/train/polish_distil/weights/best.keras",
        "stage1": "runs/train/long_gpu/weights/model.keras"}
SOUPS = [("polish",), ("flip",), ("polish", "flip"), ("polish", "flip", "2e4"), ("polish", "flip", "2e4", "distil"),
         ("polish", "flip", "distil"), ("polish", "stage1")]


def main() -> None:
    train = load_split(DataSpec(DATA, size=48), "Training")
    val = load_split(DataSpec(DATA, size=48), "PublicTest")
    calibration = train.images[np.random.default_rng(0).permutation(len(train))[:4096]]
    weights = {name: load_face_model(path, "soup").get_weights() for name, path in RUNS.items()}
    model = load_face_model(RUNS["polish"], "soup")
    print("| runs averaged | PublicTest accuracy |\n| --- | ---: |")
    for soup in SOUPS:
        mean = [np.mean([weights[name][i] for name in soup], axis=0) if w.dtype.kind == "f" else w
                for i, w in enumerate(weights["polish"])]
        model.set_weights(mean)
        recalibrate_batchnorm(model, calibration)
        accuracy = compute_metrics(predict_probabilities(model, val.images), val.labels).accuracy
        print(f"| {' + '.join(soup)} | {accuracy * 100:.2f} % |")


if __name__ == "__main__":
    main()
