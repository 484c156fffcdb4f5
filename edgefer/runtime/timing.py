"""Single-face latency of a model file in a fresh process (as on a device: no TensorFlow thread pools in it).

    python -m edgefer.runtime.timing MODEL THREADS RESULT.json

`edgefer export` (its latency column) and `edgefer profile` (its edge table) run this child; it lives in the
runtime layer so neither reaches into the other."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from edgefer.files import write_json
from edgefer.machine import high_water_mark
from edgefer.runtime.base import time_single_face
from edgefer.runtime.loader import load_classifier


def measure(model_path: str, threads: int) -> dict:
    classifier = load_classifier(model_path, threads=int(threads))
    size = classifier.info.input_size
    faces = np.random.default_rng(0).integers(0, 256, (512, size, size), dtype=np.uint8)
    ms = time_single_face(classifier, repeats=200)
    start = time.perf_counter()
    classifier.predict(faces)
    rate = len(faces) / (time.perf_counter() - start)
    return {"ms_per_face": ms, "faces_per_s": rate, "backend": classifier.backend,
            "self_peak_rss_mb": high_water_mark(os.getpid()) / 1e6}


def command(model_path, threads, result_path) -> list[str]:
    return [sys.executable, "-m", "edgefer.runtime.timing", str(model_path), str(threads), str(result_path)]


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m edgefer.runtime.timing MODEL THREADS RESULT.json")
    write_json(sys.argv[3], measure(sys.argv[1], int(sys.argv[2])))
