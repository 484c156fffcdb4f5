"""Training throughput of every registered model on this machine: images/s and seconds per FER-2013 epoch.

Uses edgefer's real training path (tf.data pipeline with augmentation, the recipe's optimizer and loss).
Prints a Markdown table; per-batch times are medians after a warm-up. `--branches 1,2` also times
mini_xception's re-parameterized training form (`edgefer train --branches N`).

    python benchmarks/train_speed.py --data ../shared/data/fer2013_train_publictest.csv.gz
    python benchmarks/train_speed.py --data ... --models mini_xception --branches 1,2
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FER_TRAIN_IMAGES = 28_709


def measure(model_name: str, images, labels, batch_size: int, steps: int, warmup: int, branches: int = 0) -> dict:
    import keras

    from edgefer.models import build_model
    from edgefer.train.pipeline import AugmentConfig, make_train_dataset
    from edgefer.train.reparam import expanded_mini_xception

    keras.utils.set_random_seed(0)
    model = expanded_mini_xception(branches=branches) if branches else build_model(model_name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy(),
                  metrics=["accuracy"])
    dataset = make_train_dataset(images, labels, batch_size, AugmentConfig(), seed=0, endless=True)
    stamps = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    model.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[Clock()], shuffle=False)
    per_batch = float(np.median(np.diff(stamps[warmup:])))
    rate = batch_size / per_batch
    label = f"{model_name} (--branches {branches})" if branches else model_name
    return {"model": label, "parameters": model.count_params(), "batch": batch_size,
            "ms_per_batch": per_batch * 1000, "images_per_s": rate,
            "s_per_epoch": FER_TRAIN_IMAGES / rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--models", default="mini_xception,cnn,vgg,resnet50")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--branches", default="", help="comma list: also time mini_xception trained with N branches")
    args = parser.parse_args()

    from edgefer.data import read_fer_csv

    faces = read_fer_csv(args.data, "Training", limit=args.batch_size * 64)
    rows = []
    for name in args.models.split(","):
        steps = max(8, args.steps // 4) if name == "resnet50" else args.steps
        rows.append(measure(name, faces.images, faces.labels, args.batch_size, steps, args.warmup))
        print(f"measured {name}", flush=True)
    for branches in [int(b) for b in args.branches.split(",") if b]:
        rows.append(measure("mini_xception", faces.images, faces.labels, args.batch_size, args.steps, args.warmup,
                            branches))
        print(f"measured mini_xception with {branches} branches", flush=True)
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"oneDNN {'off' if os.environ.get('TF_ENABLE_ONEDNN_OPTS') == '0' else 'on'}\n")
    print("| model | parameters | batch | ms/batch (median) | images/s | s/epoch (28,709 images) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['parameters']:,} | {r['batch']} | {r['ms_per_batch']:.1f} | "
              f"{r['images_per_s']:.0f} | {r['s_per_epoch']:.0f} |")


if __name__ == "__main__":
    main()
