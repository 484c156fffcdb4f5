"""ONNX Runtime latency against convolution widths: mini_xception built at several widths, exported as
is and with widths padded to multiples of 8 by zero channels (what `edgefer export` does for ONNX).

Single-face latency in fresh processes without TensorFlow, 1 thread, median of --repeats. Random
weights with non-trivial batch-norm statistics (latency does not depend on the values, except for
subnormal floats, which random weights do not have). Prints a Markdown table.

    python benchmarks/onnx_widths.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def randomise_batchnorm(model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            shape = layer.get_weights()[0].shape
            layer.set_weights([rng.normal(1, 0.2, shape), rng.normal(0, 0.2, shape), rng.normal(0, 0.2, shape),
                               rng.uniform(0.5, 2.0, shape)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1.0,0.9,0.875,1.125")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from edgefer.convert.export import clean_process_latency
    from edgefer.convert.to_onnx import convert_onnx
    from edgefer.prune.channels import channel_graph, pad_channels
    from edgefer.models import build_model

    rng = np.random.default_rng(0)
    print("| width | channels | parameters | ONNX ms as built | padded channels | ONNX ms padded | ratio |")
    print("| ---: | --- | ---: | ---: | --- | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        for width in (float(w) for w in args.widths.split(",")):
            model = build_model("mini_xception", width=width)
            randomise_batchnorm(model, rng)
            padded = pad_channels(model, 8)
            times, channels = [], []
            for name, variant in (("built", model), ("padded", padded)):
                path = Path(folder) / f"{width}_{name}.onnx"
                path.write_bytes(convert_onnx(variant, (48, 48, 1), {}))
                times.append(statistics.median(clean_process_latency(path, 1)[0] for _ in range(args.repeats)))
                widths = sorted({group.width for group in channel_graph(variant).prunable()})
                channels.append("/".join(str(w) for w in widths))
            print(f"| {width} | {channels[0]} | {model.count_params():,} | {times[0]:.3f} | {channels[1]} | "
                  f"{times[1]:.3f} | {times[1] / times[0]:.2f} |")


if __name__ == "__main__":
    main()
