"""What test-time augmentation costs per face: `predict`, `predict_tta` (2 views) and
`predict_tta(shift=N)` (10 views) on one face at a time, with the shipped int8 and ONNX files.

1 thread, no TensorFlow; median of --calls calls per setting after a warm-up, in one process, so the
ratios between rows are the comparable part. Prints a Markdown table.

    python benchmarks/tta_cost.py --data ../shared/data/fer2013_train_publictest.csv.gz
"""

from __future__ import annotations

import argparse
import statistics
import time

from edgefer.data import read_fer_csv
from edgefer.runtime import WEIGHTS, load_classifier

MODELS = ("mini_xception_fer2013_int8.tflite", "mini_xception_fer2013.onnx")


def median_ms(call, faces, calls: int) -> float:
    for face in faces[:20]:
        call(face)
    times = []
    for k in range(calls):
        face = faces[k % len(faces)]
        started = time.perf_counter()
        call(face)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--shift", type=int, default=2)
    args = parser.parse_args()
    faces = read_fer_csv(args.data, "PublicTest", limit=200).images
    print("| model | predict, ms/face | --tta (2 views) | --tta-shift (10 views) | 10 views / predict |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in MODELS:
        model = load_classifier(WEIGHTS / name, threads=1)
        plain = median_ms(model.predict, faces, args.calls)
        flip = median_ms(model.predict_tta, faces, args.calls)
        shifted = median_ms(lambda face: model.predict_tta(face, shift=args.shift), faces, args.calls)
        print(f"| {name} | {plain:.3f} | {flip:.3f} | {shifted:.3f} | {shifted / plain:.1f}x |")


if __name__ == "__main__":
    main()
