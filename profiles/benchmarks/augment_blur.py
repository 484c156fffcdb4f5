"""How much augmentation blurs FER-2013 faces, and what a trained model makes of the augmented batches.

Compares edgefer's augmentation (one OpenCV warp per face, `edgefer.train.pipeline.random_affine`) with the
chain of Keras preprocessing layers that the TensorFlow path used until 2026-11-25 (rotation, translation,
zoom, flip: three resamplings). Sharpness is the mean |Laplacian| of a face; accuracy is the model's on
the augmented training faces. Prints a Markdown table.

    python benchmarks/augment_blur.py --data ../shared/data/fer2013_train_publictest.csv.gz
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def sharpness(faces: np.ndarray) -> float:
    import cv2

    return float(np.mean([np.abs(cv2.Laplacian(f.astype(np.float32), cv2.CV_32F)).mean() for f in faces]))


def keras_layer_chain(faces: np.ndarray, seed: int) -> np.ndarray:
    """The replaced pipeline: Keras' random layers applied one after another (pixel units)."""
    import keras

    layers = [keras.layers.RandomRotation(10 / 360, fill_mode="nearest", seed=seed),
              keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed + 1),
              keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 2),
              keras.layers.RandomFlip("horizontal", seed=seed + 3)]
    x = faces[..., None].astype(np.float32)
    for layer in layers:
        x = layer(x, training=True)
    return np.clip(keras.ops.convert_to_numpy(x)[..., 0], 0, 255)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="edgefer/weights/mini_xception_fer2013.keras")
    parser.add_argument("--limit", type=int, default=4096, help="training faces to augment")
    args = parser.parse_args()

    from edgefer.data import read_fer_csv
    from edgefer.runtime import load_classifier
    from edgefer.train.pipeline import AugmentConfig, random_affine

    faces = read_fer_csv(args.data, "Training", limit=args.limit)
    classifier = load_classifier(args.model)
    views = {
        "none": faces.images.astype(np.float32),
        "one OpenCV warp (edgefer)": np.clip(random_affine(faces.images, AugmentConfig(), np.random.default_rng(0)), 0, 255),
        "Keras layer chain (replaced)": keras_layer_chain(faces.images, seed=0),
    }
    original = sharpness(views["none"])
    print(f"\n{len(faces)} FER-2013 training faces, model {args.model}\n")
    print("| augmentation | sharpness (mean abs Laplacian) | of the original | model accuracy |")
    print("| --- | ---: | ---: | ---: |")
    for name, images in views.items():
        predicted = classifier.predict(np.round(images).astype(np.uint8)).argmax(axis=1)
        accuracy = float(np.mean(predicted == faces.labels))
        print(f"| {name} | {sharpness(images):.1f} | {sharpness(images) / original:.2f} | {accuracy:.2%} |")


if __name__ == "__main__":
    main()
