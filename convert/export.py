"""`edgefer export`: write each requested format, reload it in its real runtime, validate it on real faces.

Every exported file gets a sidecar `<file>.json` (class names, input size and scaling, model name and
version) so that it can be used without the training code; ONNX files also carry it in metadata_props.
"""

from __future__ import annotations

import difflib
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import edgefer
from edgefer.convert.input_grid import FLOAT_OFFSET, INPUT_SCALE, int8_input_model, scale_for_input
from edgefer.errors import EdgeferError
from edgefer.prune.channels import pad_channels
from edgefer.data import DataSpec, file_sha256, is_csv, load_split
from edgefer.files import atomic_path, check_writable_folder, model_label, new_run_dir, write_json, write_text
from edgefer.tfenv import configure_tensorflow
from edgefer.convert.config import ExportConfig
from edgefer.options import check
from edgefer.runtime import ModelInfo, load_classifier, sidecar_path
from edgefer.runtime.formats import EXPORT_FORMATS, FORMATS, INT8_FORMATS
from edgefer.runtime.timing import command as timing_command
from edgefer.labels import CLASS_NAMES
from edgefer.metrics import compute_metrics

DEFAULT_FORMATS = EXPORT_FORMATS
# ONNX exports get convolution widths rounded up to a multiple of 8 with zero channels (same outputs):
# ONNX Runtime ran a pruned mini_xception with odd widths 1.7x slower than the unpruned one
ONNX_CHANNEL_MULTIPLE = 8
DEFAULT_PROJECT = Path("runs/export")   # runs/export/<model stem>[N] unless --out is given
MIN_CALIBRATION, RECOMMENDED_CALIBRATION = 20, 300


class ExportError(EdgeferError):
    """Bad export input; one line."""


@dataclass
class ExportRow:
    format: str
    file: str
    status: str
    size_kb: float
    accuracy: float | None = None
    delta_vs_keras: float | None = None
    top1_agreement: float | None = None
    max_prob_diff: float | None = None
    ms_per_face: float | None = None
    faces_per_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def parse_formats(text: str | None, int8_only: bool = False) -> list[str]:
    if int8_only and not text:
        return list(INT8_FORMATS)
    names = [n.strip() for n in (text or ",".join(DEFAULT_FORMATS)).split(",") if n.strip()]
    for name in names:
        if name not in EXPORT_FORMATS:
            hint = difflib.get_close_matches(name, EXPORT_FORMATS, n=1)
            raise ExportError(f"unknown format {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                              + f"; expected some of {', '.join(EXPORT_FORMATS)}")
    return list(dict.fromkeys(names))


def _load_keras(model_path: Path):
    from edgefer.models import load_face_model

    try:
        return load_face_model(model_path, "export")
    except (FileNotFoundError, ValueError) as error:
        raise ExportError(str(error)) from None


def model_metadata(model, model_path: Path, fmt: str, input_offset: float = FLOAT_OFFSET) -> dict:
    base = ModelInfo.for_model(model_path)
    return {
        "name": model.name, "version": base.version or edgefer.__version__,
        "format": fmt, "class_names": list(CLASS_NAMES), "input_size": int(model.input_shape[1]),
        "channels": 1, "input_scale": INPUT_SCALE, "input_offset": input_offset,
        "input": "grayscale face, pixel * input_scale + input_offset (about [-1, 1]); "
                 "int8 models quantise that with the input tensor's scale and zero point",
        "source_model": model_path.name, "source_sha256": file_sha256(model_path),
        "edgefer_version": edgefer.__version__,
    }


def calibration_faces(data: str, count: int, seed: int, size: int) -> np.ndarray:
    """`count` random training faces (uint8, N x size x size) to calibrate full-integer quantisation."""
    spec = DataSpec(data, seed=seed, size=size)
    faces = load_split(spec, "Training" if is_csv(data) else "train")
    if len(faces) < MIN_CALIBRATION:
        raise ExportError(f"{data}: only {len(faces)} calibration images; full-integer quantisation needs "
                          f"at least {MIN_CALIBRATION} (>= {RECOMMENDED_CALIBRATION} recommended)")
    if count < MIN_CALIBRATION:
        raise ExportError(f"--calibration {count}: at least {MIN_CALIBRATION} images are needed "
                          f"(>= {RECOMMENDED_CALIBRATION} recommended)")
    chosen = np.random.default_rng(seed).permutation(len(faces))[:count]
    if len(chosen) < RECOMMENDED_CALIBRATION:
        warnings.warn(f"calibrating int8 on {len(chosen)} images; {RECOMMENDED_CALIBRATION}+ recommended",
                      stacklevel=2)
    return faces.images[chosen]


def _write_file(target: Path, payload: bytes, metadata: dict) -> None:
    with atomic_path(target) as temp:
        temp.write_bytes(payload)
    write_json(sidecar_path(target), metadata)


def _measure(path: Path, faces, labels, reference: np.ndarray | None, threads: int):
    classifier = load_classifier(path, threads=threads)
    probabilities = classifier.predict(faces)
    accuracy = compute_metrics(probabilities, labels).accuracy
    agreement = diff = None
    if reference is not None:
        agreement = float((probabilities.argmax(1) == reference.argmax(1)).mean())
        diff = float(np.abs(probabilities - reference).max())
    ms, rate = clean_process_latency(path, threads)
    return accuracy, agreement, diff, ms, rate


def clean_process_latency(path: Path, threads: int) -> tuple[float, float]:
    """Single-face ms and faces/s measured in a fresh process without TensorFlow (as on a device):
    in the exporting process TensorFlow's thread pools slow other runtimes (ONNX Runtime ran 4x slower)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "latency.json"
        subprocess.run(timing_command(path, threads, result), check=True, capture_output=True, timeout=600)
        timing = json.loads(result.read_text())
    return timing["ms_per_face"], timing["faces_per_s"]


def export_model(model_path, out_dir=None, formats=DEFAULT_FORMATS, data=None, split="PublicTest",
                 calibration=500, calibration_data=None, threshold=1.0, threads=1, limit=None, seed=0,
                 log=print) -> tuple[list[ExportRow], Path]:
    """Export `model_path` to `formats` in `out_dir`, validate each file, write export.md/json."""
    configure_tensorflow()
    model_path = Path(model_path)
    if not data:
        raise ExportError("--data is required to validate the exports (e.g. the FER-2013 CSV; PublicTest is used)")
    if out_dir is not None:
        check_writable_folder(out_dir, "--out")
        taken = [name for name in ("export.md", "export.json") if (Path(out_dir) / name).exists()]
        if taken:   # nothing already written is replaced: an earlier export's report and files stay
            raise ExportError(f"--out {out_dir}: holds an earlier export ({', '.join(taken)}); expected a new or "
                              f"empty folder (leave --out out for a new runs/export/<name>N)")
    else:
        check_writable_folder(DEFAULT_PROJECT, "--out")
    model = _load_keras(model_path)
    size = int(model.input_shape[1])
    stem = model_path.stem
    faces = load_split(DataSpec(str(data), seed=seed, limit=limit, size=size), split)
    calibration_set, int8_model, int8_offset = None, model, FLOAT_OFFSET
    if any(f in INT8_FORMATS for f in formats):
        int8_model, int8_offset = int8_input_model(model)
        faces_u8 = calibration_faces(str(calibration_data or data), calibration, seed, size)
        calibration_set = scale_for_input(faces_u8, int8_offset)
        if int8_offset != FLOAT_OFFSET:
            log("int8 input on the pixel grid: (pixel - 128) / 127.5, the 1/255 shift folded into the first layer")

    from edgefer.runtime.keras import predict_probabilities

    reference = predict_probabilities(model, faces.images)
    keras_accuracy = compute_metrics(reference, faces.labels).accuracy
    keras_ms, keras_rate = _keras_timing(model_path, faces.images)
    rows = [ExportRow("keras", str(model_path), "ok", model_path.stat().st_size / 1024, keras_accuracy, 0.0,
                      1.0, 0.0, keras_ms, keras_rate)]
    log(f"keras reference: accuracy {keras_accuracy:.4f} on {len(faces)} {split} faces")

    from edgefer.convert.to_tflite import keras_to_tflite

    # a new folder per export unless --out names one: never inside the installed package, never over another
    out_dir = Path(out_dir) if out_dir is not None else new_run_dir(DEFAULT_PROJECT, model_label(model_path))
    for fmt in formats:
        target = out_dir / f"{stem}{FORMATS[fmt].ending}"
        source, offset = (int8_model, int8_offset) if fmt in INT8_FORMATS else (model, FLOAT_OFFSET)
        metadata = model_metadata(model, model_path, fmt, offset)
        started = time.perf_counter()
        try:
            if FORMATS[fmt].runtime == "tflite":
                calibration = (lambda: iter(calibration_set)) if fmt in INT8_FORMATS else None
                _write_file(target, keras_to_tflite(source, (size, size, 1), fmt, calibration), metadata)
            elif fmt == "onnx":
                _write_onnx(source, size, target, metadata)
            else:
                _write_onnx_int8(source, size, target, metadata, calibration_set, out_dir, stem)
        except Exception as error:  # a converter failure is reported in the table, not a crash
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            rows.append(ExportRow(fmt, str(target), f"error: {reason[:120]}", 0.0))
            log(f"{fmt}: export failed ({reason[:120]})")
            continue
        accuracy, agreement, diff, ms, rate = _measure(target, faces.images, faces.labels, reference, threads)
        delta = (accuracy - keras_accuracy) * 100
        status = "ok" if delta >= -threshold else f"FAILED: {delta:+.2f} points vs Keras (file not kept)"
        if status != "ok":   # a file that failed validation is not left where a device could pick it up
            size_kb = target.stat().st_size / 1024
            target.unlink()
            sidecar_path(target).unlink(missing_ok=True)
            rows.append(ExportRow(fmt, str(target), status, size_kb, accuracy, delta, agreement, diff, ms, rate))
            log(f"{fmt}: {target.name} {status}")
            continue
        rows.append(ExportRow(fmt, str(target), status, target.stat().st_size / 1024, accuracy, delta,
                              agreement, diff, ms, rate))
        log(f"{fmt}: {target.name} {target.stat().st_size / 1024:.1f} KB in {time.perf_counter() - started:.1f} s, "
            f"accuracy {accuracy:.4f} ({delta:+.2f} points), {status}")
    _write_report(rows, out_dir, model_path, split, len(faces), threads)
    return rows, out_dir


def _keras_timing(model_path: Path, images: np.ndarray) -> tuple[float, float]:
    from edgefer.runtime import time_single_face

    classifier = load_classifier(model_path)
    ms = time_single_face(classifier, repeats=50)
    start = time.perf_counter()
    classifier.predict(images[:256])
    return ms, min(256, len(images)) / (time.perf_counter() - start)


def _write_onnx(model, size, target, metadata) -> None:
    from edgefer.convert.to_onnx import convert_onnx

    padded = pad_channels(model, ONNX_CHANNEL_MULTIPLE)
    _write_file(target, convert_onnx(padded, (size, size, 1), {"edgefer": json.dumps(metadata)}), metadata)


def _write_onnx_int8(model, size, target, metadata, calibration_set, out_dir, stem) -> None:
    from edgefer.convert.to_onnx import convert_onnx, quantize_onnx_int8

    float_path = out_dir / f".{stem}_for_quant.onnx"
    float_path.parent.mkdir(parents=True, exist_ok=True)
    float_path.write_bytes(convert_onnx(pad_channels(model, ONNX_CHANNEL_MULTIPLE), (size, size, 1), {}))
    try:
        with atomic_path(target) as temp:
            quantize_onnx_int8(float_path, temp, calibration_set, {"edgefer": json.dumps(metadata)})
        write_json(sidecar_path(target), metadata)
    finally:
        float_path.unlink(missing_ok=True)


def format_table(rows: list[ExportRow]) -> str:
    def number(value, spec):
        return "-" if value is None else format(value, spec)

    lines = ["| Format | Status | Size (KB) | Accuracy | Δ vs Keras (points) | Top-1 agreement | Max abs Δp "
             "| ms/face (1 thread) | faces/s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r.format} | {r.status} | {r.size_kb:.1f} | {number(r.accuracy, '.4f')} | "
                     f"{number(r.delta_vs_keras, '+.2f')} | {number(r.top1_agreement, '.4f')} | "
                     f"{number(r.max_prob_diff, '.4f')} | {number(r.ms_per_face, '.3f')} | {number(r.faces_per_s, '.0f')} |")
    return "\n".join(lines)


def _write_report(rows, out_dir: Path, model_path: Path, split: str, count: int, threads: int) -> None:
    header = (f"Export of `{model_path.name}`, validated on {count} {split} faces; latency: median of 200 single-face "
              f"calls with {threads} thread(s) in a fresh process without TensorFlow (Keras: in-process, "
              f"TensorFlow's default threads); faces/s: one batch of 512.\n\n")
    write_text(out_dir / "export.md", header + format_table(rows) + "\n")
    write_json(out_dir / "export.json", {"model": str(model_path), "split": split, "faces": count,
                                         "threads": threads, "rows": [asdict(r) for r in rows]})


def export_with_config(config: ExportConfig, log=print) -> tuple[list[ExportRow], Path]:
    """`edgefer export`: the config's formats (or --int8's), validated, written; see export_model."""
    check(config)
    formats = parse_formats(config.formats, int8_only=config.int8)
    return export_model(config.model, config.out, formats, config.data, config.split, config.calibration,
                        config.calibration_data, config.threshold, config.threads, config.limit, config.seed, log=log)
