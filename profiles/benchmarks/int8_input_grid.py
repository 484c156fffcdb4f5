"""Full-int8 accuracy with the input off and on the pixel grid (convert/input_grid.py), over calibration sets.

For each calibration seed, the same model is quantised twice with the same training faces: reading
x = pixel/127.5 - 1 (every pixel halfway between two int8 levels, rounded either way by float error: how
edgefer exported before 2026-11-25) and reading (pixel - 128)/127.5 with the 1/255 folded into the first
layer (exact levels: what `edgefer export` does now). Each file is scored on PublicTest by edgefer's own
inference API, as `edgefer export` and `edgefer evaluate` score it.

    python benchmarks/int8_input_grid.py edgefer/weights/mini_xception_fer2013.keras --data ../shared/data/fer2013_train_publictest.csv.gz
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

from edgefer.convert.export import _write_file, _write_onnx_int8, calibration_faces, model_metadata
from edgefer.convert.input_grid import FLOAT_OFFSET, int8_input_model, scale_for_input
from edgefer.convert.to_tflite import keras_to_tflite
from edgefer.data import DataSpec, load_split
from edgefer.runtime import load_classifier
from edgefer.models import load_face_model
from edgefer.runtime.keras import predict_probabilities

VARIANTS = ("off the grid (before)", "pixel grid (now)")


def export_int8(model_path: Path, source, offset: float, faces_u8: np.ndarray, fmt: str, folder: Path) -> Path:
    size = int(source.input_shape[1])
    calibration = scale_for_input(faces_u8, offset)
    target = folder / ("model_int8.tflite" if fmt == "int8" else "model_int8.onnx")
    metadata = model_metadata(source, model_path, fmt, offset)
    if fmt == "int8":
        _write_file(target, keras_to_tflite(source, (size, size, 1), fmt, lambda: iter(calibration)), metadata)
    else:
        _write_onnx_int8(source, size, target, metadata, calibration, folder, "model")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", required=True)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--calibration", type=int, default=500)
    parser.add_argument("--formats", default="int8,onnx_int8")
    args = parser.parse_args()

    model = load_face_model(args.model, "quantise")
    faces = load_split(DataSpec(args.data, size=int(model.input_shape[1])), "PublicTest")
    keras_accuracy = (predict_probabilities(model, faces.images).argmax(1) == faces.labels).mean() * 100
    folded, grid_offset = int8_input_model(model)
    if grid_offset == FLOAT_OFFSET:
        raise SystemExit(f"{args.model}: no exact fold of the input shift for this architecture")
    sources = dict(zip(VARIANTS, [(model, FLOAT_OFFSET), (folded, grid_offset)]))
    formats = args.formats.split(",")
    deltas = {(fmt, variant): [] for fmt in formats for variant in VARIANTS}
    print(f"{args.model.name}: Keras {keras_accuracy:.2f} % on {len(faces)} PublicTest faces; "
          f"Δ in points per calibration seed ({args.calibration} training faces each)\n")
    print("| format | input | " + " | ".join(f"seed {s}" for s in range(args.seeds)) + " | median | spread |")
    print("| --- | --- |" + " ---: |" * (args.seeds + 2))
    for fmt in formats:
        for variant, (source, offset) in sources.items():
            for seed in range(args.seeds):
                faces_u8 = calibration_faces(args.data, args.calibration, seed, int(model.input_shape[1]))
                with tempfile.TemporaryDirectory() as folder:
                    path = export_int8(args.model, source, offset, faces_u8, fmt, Path(folder))
                    predicted = load_classifier(path, threads=1).predict(faces.images).argmax(1)
                deltas[fmt, variant].append((predicted == faces.labels).mean() * 100 - keras_accuracy)
            values = deltas[fmt, variant]
            print(f"| {fmt} | {variant} | " + " | ".join(f"{v:+.2f}" for v in values)
                  + f" | {statistics.median(values):+.2f} | {min(values):+.2f} to {max(values):+.2f} |", flush=True)


if __name__ == "__main__":
    main()
