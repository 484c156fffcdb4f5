"""Convert the `mtcnn` package's P-Net, R-Net and O-Net (weights shipped inside it, MIT licence) to TFLite.

edgefer's detector (`edgefer.detect.mtcnn`) runs these three files on LiteRT with the pyramid, NMS and box
refinement in numpy/OpenCV, so a device needs neither TensorFlow nor the `mtcnn` package.

    python -m edgefer.convert.mtcnn_tflite --out edgefer/weights
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from edgefer.files import atomic_path, write_text

# network -> (stage class name, input shape without batch; None = any size)
NETWORKS = {
    "pnet": ("StagePNet", (None, None, 3)),
    "rnet": ("StageRNet", (24, 24, 3)),
    "onet": ("StageONet", (48, 48, 3)),
}

LICENCE_NOTE = """The files mtcnn_pnet.tflite, mtcnn_rnet.tflite and mtcnn_onet.tflite are the MTCNN networks
(Zhang et al., 2016) with the weights shipped in the `mtcnn` Python package (https://github.com/ipazc/mtcnn,
version {version}), converted to TFLite by `python -m edgefer.convert.mtcnn_tflite`.

The `mtcnn` package is released under the MIT License, Copyright (c) 2019 Iván de Paz Centeno.
Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files, to deal in the Software without restriction, subject to the condition that the above
copyright notice and this permission notice be included in all copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
"""


def convert_network(name: str, representative=None) -> bytes:
    """The network as a float TFLite file; with `representative` (a callable yielding [input] lists), int8
    weights and activations with float input and output (measured slower than float on x86: see
    profiles/benchmarks/detect_levers.md)."""
    import keras
    import mtcnn.stages as stages
    import tensorflow as tf

    stage_class, shape = NETWORKS[name]
    network = getattr(stages, stage_class)().model
    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint(name="serve", fn=lambda x: network(x),
                         input_signature=[tf.TensorSpec((None, *shape), tf.float32, name="image")])
    with tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if representative is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
        return converter.convert()


def convert_mtcnn(out_dir: str | os.PathLike) -> list[Path]:
    from importlib.metadata import version

    out_dir = Path(out_dir)
    written = []
    for name in NETWORKS:
        target = out_dir / f"mtcnn_{name}.tflite"
        with atomic_path(target) as temp:
            temp.write_bytes(convert_network(name))
        written.append(target)
    write_text(out_dir / "MTCNN_LICENSE.txt", LICENCE_NOTE.format(version=version("mtcnn")))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Convert the mtcnn package's networks to TFLite.")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "edgefer" / "weights"))
    for path in convert_mtcnn(parser.parse_args().out):
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KB)")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
