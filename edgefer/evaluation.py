"""`edgefer evaluate`: metrics of any model format on a labelled split, written as JSON and PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgefer.data import DataSpec, load_split
from edgefer.metrics import Metrics, compute_metrics, format_metrics
from edgefer.plots import plot_confusion
from edgefer.files import write_json
from edgefer.inference import load_classifier


@dataclass
class EvaluationReport:
    metrics: Metrics
    text: str
    json_path: Path
    png_path: Path


def evaluate_model(model_path, data, split="PublicTest", tta=False, limit=None, skip_bad=False,
                   threads=None, out_dir=Path("runs/evaluate"), seed=0, tta_shift=0) -> EvaluationReport:
    """`tta`: average each face with its mirror image; `tta_shift` > 0 (pixels) also averages both
    moved in four directions (10 views; implies `tta`)."""
    if tta_shift < 0:
        raise ValueError(f"--tta-shift must be >= 0 pixels, got {tta_shift}")
    tta = tta or tta_shift > 0
    classifier = load_classifier(model_path, threads=threads)
    spec = DataSpec(str(data), seed=seed, limit=limit, skip_bad=skip_bad, size=classifier.info.input_size)
    faces = load_split(spec, split)
    if tta:
        probabilities = classifier.predict_tta(faces.images, shift=tta_shift)
    else:
        probabilities = classifier.predict(faces.images)
    metrics = compute_metrics(probabilities, faces.labels)
    out_dir = Path(out_dir)
    suffix, label = _tta_names(tta, tta_shift)
    stem = f"{Path(model_path).name}_{split}{suffix}"
    title = f"{Path(model_path).name} on {split}{label} [{classifier.backend}]"
    json_path = write_json(out_dir / f"{stem}.json", {
        "model": str(model_path), "backend": classifier.backend, "data": str(data), "split": split,
        "tta": tta, "tta_shift": tta_shift, "skipped_rows": faces.skipped, **metrics.as_dict(),
    })
    png_path = plot_confusion(metrics, out_dir / f"{stem}.png", title=title)
    notes = "".join(f"{note}\n" for note in faces.notes)
    return EvaluationReport(metrics, notes + format_metrics(metrics, title), json_path, png_path)


def _tta_names(tta: bool, shift: int) -> tuple[str, str]:
    """File-name suffix and title note of a TTA setting."""
    if shift:
        return f"_tta_shift{shift}", f" (flip + {shift}px shift TTA, 10 views)"
    return ("_tta", " (flip TTA)") if tta else ("", "")
