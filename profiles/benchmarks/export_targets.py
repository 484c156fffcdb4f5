"""Export a model to every format, validate on the whole PublicTest, and check issue 5's targets.

Latency: median over --repeats fresh processes (no TensorFlow) of the median of 200 single-face calls, 1 thread.

    python benchmarks/export_targets.py edgefer/weights/mini_xception_fer2013.keras --data ../shared/data/fer2013_train_publictest.csv.gz
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from edgefer.convert.export import clean_process_latency, export_model, format_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rows, folder = export_model(args.model, args.out or tempfile.mkdtemp(prefix="edgefer_export_"),
                                data=args.data, log=lambda *_: None)
    print(format_table(rows) + "\n")
    latency = {}
    for row in rows:
        if row.format == "keras" or not row.ok:
            continue
        latency[row.format] = statistics.median(clean_process_latency(row.file, 1)[0] for _ in range(args.repeats))
    print("| format | ms/face, 1 thread (median of %d rounds) |\n| --- | ---: |" % args.repeats)
    for fmt, ms in latency.items():
        print(f"| {fmt} | {ms:.3f} |")
    by = {r.format: r for r in rows}
    fastest = min(latency, key=latency.get)
    checks = [
        ("int8 TFLite under 110 KB", f"{by['int8'].size_kb:.1f} KB", by["int8"].size_kb < 110),
        ("int8 TFLite within 0.5 points of Keras", f"{by['int8'].delta_vs_keras:+.2f} points", abs(by["int8"].delta_vs_keras) <= 0.5),
        ("float32 TFLite top-1 agreement >= 99.9 %", f"{100 * by['float32'].top1_agreement:.2f} %", by["float32"].top1_agreement >= 0.999),
        ("ONNX top-1 agreement >= 99.9 %", f"{100 * by['onnx'].top1_agreement:.2f} %", by["onnx"].top1_agreement >= 0.999),
        ("fastest single-face latency <= 0.15 ms (1 thread)", f"{fastest}: {latency[fastest]:.3f} ms", latency[fastest] <= 0.15),
    ]
    print("\n| target | measured | met |\n| --- | --- | --- |")
    for name, measured, met in checks:
        print(f"| {name} | {measured} | {'yes' if met else 'NO'} |")
    print(f"\nexports in {folder}")


if __name__ == "__main__":
    main()
