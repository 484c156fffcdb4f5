"""Copy YuNet's ONNX file (libfacedetection.train, Apache-2.0) into edgefer's weights, checked by SHA-256.

`edgefer run --detector yunet` runs it in OpenCV's `cv2.FaceDetectorYN`. The file is the repository's
`onnx/yunet_s_640_640.onnx` (the same bytes as opencv_zoo's `face_detection_yunet_2023mar.onnx`); the
`*_dynamic.onnx` variants do not load in OpenCV's DNN module. Take both files from a checkout of
github.com/ShiqiYu/libfacedetection.train (e.g. `git show HEAD:onnx/yunet_s_640_640.onnx > yunet.onnx`):

    python -m edgefer.convert.yunet_onnx --onnx yunet.onnx --licence LICENSE --commit 0047ac24a
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from edgefer.files import atomic_path, write_text

TARGET = "yunet_s_640_640.onnx"
SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"

NOTE = """{target} is YuNet (libfacedetection; Copyright (c) 2022 Shiqi Yu and contributors), a face detector
with five landmarks, copied unchanged by `python -m edgefer.convert.yunet_onnx` from the repository
github.com/ShiqiYu/libfacedetection.train (file onnx/yunet_s_640_640.onnx, commit {commit}), which is
released under the Apache License, Version 2.0 (its LICENSE follows). The same bytes are opencv_zoo's
face_detection_yunet_2023mar.onnx.

SHA-256: {digest}

{licence}"""


def copy_model(onnx: Path, licence: Path, out: Path, commit: str) -> str:
    payload = Path(onnx).read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"error: {onnx}: SHA-256 {digest[:12]}... is not YuNet 2023mar's ({SHA256[:12]}...)")
    with atomic_path(out / TARGET) as temp:
        temp.write_bytes(payload)
    write_text(out / "YUNET_LICENSE.txt", NOTE.format(target=TARGET, commit=commit, digest=digest,
                                                      licence=Path(licence).read_text()))
    return digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, required=True)
    parser.add_argument("--licence", type=Path, required=True)
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "edgefer" / "weights")
    args = parser.parse_args()
    print(f"wrote {args.out / TARGET} ({copy_model(args.onnx, args.licence, args.out, args.commit)[:12]})")


if __name__ == "__main__":
    main()
