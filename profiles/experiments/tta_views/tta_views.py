"""Which test-time views help the shipped model? Flip, shift grids and zooms, scored on PublicTest.

    python profiles/experiments/tta_views/tta_views.py --data ../shared/data/fer2013_train_publictest.csv.gz

Each view is classified once; a setting is the mean of its views' probabilities. Zoom z > 0 crops z pixels
from every side and scales back up to 48x48; z < 0 pads with the border and scales down.
"""
import argparse

import cv2
import numpy as np

from edgefer.data import read_fer_csv
from edgefer.runtime import load_classifier, translate

MODELS = ("edgefer/weights/mini_xception_fer2013.keras", "edgefer/weights/mini_xception_fer2013_int8.tflite")
FOUR_1 = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
DIAGONAL_1 = [(1, 1), (1, -1), (-1, 1), (-1, -1)]
FOUR_2 = [(2, 0), (-2, 0), (0, 2), (0, -2)]
GRID_1 = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
GRID_2 = [(dy, dx) for dy in (-2, -1, 0, 1, 2) for dx in (-2, -1, 0, 1, 2)]


def zoom(faces: np.ndarray, pixels: int) -> np.ndarray:
    if pixels == 0:
        return faces
    size = faces.shape[1]
    if pixels > 0:
        return np.stack([cv2.resize(f[pixels:-pixels, pixels:-pixels], (size, size)) for f in faces])
    pad = -pixels
    return np.stack([cv2.resize(cv2.copyMakeBorder(f, pad, pad, pad, pad, cv2.BORDER_REPLICATE), (size, size),
                                interpolation=cv2.INTER_AREA) for f in faces])


def settings() -> dict[str, list[tuple[int, int, int, int]]]:
    """name -> views as (flip, zoom, dy, dx)."""
    both = (0, 1)
    table = {"none": [(0, 0, 0, 0)], "flip (2 views)": [(f, 0, 0, 0) for f in both]}
    for name, offsets in [("flip + 1 px four ways (10)", FOUR_1), ("flip + 1 px eight ways (18)", FOUR_1 + DIAGONAL_1),
                          ("flip + 1 and 2 px four ways (18)", FOUR_1 + FOUR_2), ("flip + 3x3 grid (18)", GRID_1),
                          ("flip + 5x5 grid (50)", GRID_2)]:
        table[name] = [(f, 0, dy, dx) for f in both for dy, dx in offsets]
    for zooms in [(0, 2), (0, -2), (0, 3), (0, -3), (0, 2, -2), (-2, 0, 2, 3)]:
        table[f"flip x zooms {zooms} ({2 * len(zooms)})"] = [(f, z, 0, 0) for f in both for z in zooms]
        table[f"flip x zooms {zooms} + 1 px four ways ({10 * len(zooms)})"] = [
            (f, z, dy, dx) for f in both for z in zooms for dy, dx in FOUR_1]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    faces = read_fer_csv(args.data, "PublicTest")
    table = settings()
    scores = {}
    for path in args.models:
        classifier = load_classifier(path, threads=1)
        needed = sorted({view for chosen in table.values() for view in chosen})
        views = {(flip, z, dy, dx): classifier.predict(translate(zoom(faces.images[:, :, ::-1] if flip else faces.images, z), dy, dx))
                 for flip, z, dy, dx in needed}
        scores[path] = {name: float((np.mean([views[v] for v in chosen], 0).argmax(1) == faces.labels).mean() * 100)
                        for name, chosen in table.items()}
    names = [p.split("/")[-1] for p in args.models]
    print(f"PublicTest accuracy (%), {len(faces)} faces\n")
    print("| views | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for name in table:
        print(f"| {name} | " + " | ".join(f"{scores[p][name]:.2f}" for p in args.models) + " |")


if __name__ == "__main__":
    main()
