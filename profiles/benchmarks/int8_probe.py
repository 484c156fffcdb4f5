"""Is int8 faster than float for an MTCNN-shaped network on this CPU's LiteRT? P-Net's layers (random weights)
with PReLU, ReLU or max(x, 0.25x) as the activation, each converted float and int8, timed at 192x144, 1 thread.

    python profiles/benchmarks/int8_probe.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_suffix(".md")
SHAPE = (1, 144, 192, 3)


def pnet_like(activation: str):
    import keras
    from keras import layers

    def act(x):
        if activation == "prelu":
            return layers.PReLU(shared_axes=[1, 2])(x)
        if activation == "relu":
            return layers.ReLU()(x)
        return layers.Maximum()([x, layers.Rescaling(0.25)(x)])

    inputs = keras.Input(SHAPE[1:])
    x = layers.MaxPool2D(2, 2, padding="same")(act(layers.Conv2D(10, 3)(inputs)))
    x = act(layers.Conv2D(32, 3)(act(layers.Conv2D(16, 3)(x))))
    return keras.Model(inputs, [layers.Conv2D(4, 1)(x), layers.Softmax()(layers.Conv2D(2, 1)(x))])


def convert(model, int8: bool, rng) -> bytes:
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve", fn=lambda x: model(x), input_signature=[tf.TensorSpec(SHAPE, tf.float32)])
    with tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if int8:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([rng.standard_normal(SHAPE).astype(np.float32)] for _ in range(10))
        return converter.convert()


def time_invoke(content: bytes, rng, repeats: int = 5, calls: int = 50) -> float:
    from edgefer.runtime.litert import litert_interpreter_class

    interpreter = litert_interpreter_class()[0](model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], rng.standard_normal(SHAPE).astype(np.float32))
    interpreter.invoke()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            interpreter.invoke()
        runs.append((time.perf_counter() - start) / calls * 1000)
    return statistics.median(runs)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    rng = np.random.default_rng(0)
    lines = [f"P-Net-shaped network, input {'x'.join(map(str, SHAPE))}, LiteRT, 1 thread, ms per invoke (median of 5 x 50); "
             f"{time.strftime('%Y-%m-%d')}", "", "| activation | float | int8 | int8 / float |", "| --- | ---: | ---: | ---: |"]
    for activation in ("prelu", "relu", "max(x, 0.25x)"):
        model = pnet_like(activation)
        fp, q = (time_invoke(convert(model, int8, rng), rng) for int8 in (False, True))
        lines.append(f"| {activation} | {fp:.2f} | {q:.2f} | {q / fp:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
