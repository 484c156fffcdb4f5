"""What pruning buys: unpruned vs pruned model, exported to int8 TFLite and ONNX, on the whole PublicTest.

For each model: parameters, .keras size, int8 TFLite size, PublicTest accuracy (Keras and int8), and
single-face latency (median over --repeats fresh processes without TensorFlow, 1 thread) of int8 TFLite
and ONNX. Ratios pruned/unpruned come from the same run.

    python benchmarks/prune_gain.py edgefer/weights/mini_xception_fer2013.keras \
        runs/prune/<name>/weights/pruned.keras --data ../shared/data/fer2013_train_publictest.csv.gz
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from edgefer.convert.export import clean_process_latency, export_model


def measure(model: str, data: str, out: Path, repeats: int) -> dict:
    import keras

    rows, _ = export_model(model, out, ["int8", "onnx"], data, log=lambda *_: None)
    by = {row.format: row for row in rows}
    latency = {fmt: statistics.median(clean_process_latency(by[fmt].file, 1)[0] for _ in range(repeats))
               for fmt in ("int8", "onnx")}
    return {
        "parameters": keras.saving.load_model(model, compile=False).count_params(),
        "keras_kb": Path(model).stat().st_size / 1024,
        "int8_kb": by["int8"].size_kb,
        "keras_accuracy": by["keras"].accuracy,
        "int8_accuracy": by["int8"].accuracy,
        "int8_ms": latency["int8"],
        "onnx_ms": latency["onnx"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("unpruned")
    parser.add_argument("pruned")
    parser.add_argument("--data", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edgefer_prune_gain_"))
    before = measure(args.unpruned, args.data, work / "unpruned", args.repeats)
    after = measure(args.pruned, args.data, work / "pruned", args.repeats)
    print(f"unpruned: {args.unpruned}\npruned:   {args.pruned}\n")
    print("| measure | unpruned | pruned | pruned / unpruned |\n| --- | ---: | ---: | ---: |")
    formats = {"parameters": ",d", "keras_kb": ".1f", "int8_kb": ".1f", "keras_accuracy": ".4f",
               "int8_accuracy": ".4f", "int8_ms": ".3f", "onnx_ms": ".3f"}
    for key, spec in formats.items():
        ratio = after[key] / before[key] if before[key] else float("nan")
        print(f"| {key} | {format(before[key], spec)} | {format(after[key], spec)} | {ratio:.3f} |")
    print(f"\nexports in {work}")


if __name__ == "__main__":
    main()
