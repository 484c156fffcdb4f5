"""`edgefer evaluate`: metrics of any model format on a labelled split, written as JSON and PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgefer.data import DataSpec, is_csv, load_split
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
                   threads=None, out_dir=Path("runs/evaluate"), seed=0) -> EvaluationReport:
    classifier = load_classifier(model_path, threads=threads)
    spec = DataSpec(str(data), seed=seed, limit=limit, skip_bad=skip_bad, size=classifier.info.input_size)
    faces = load_split(spec, split if is_csv(data) else split)
    probabilities = classifier.predict_tta(faces.images) if tta else classifier.predict(faces.images)
    metrics = compute_metrics(probabilities, faces.labels)
    out_dir = Path(out_dir)
    stem = f"{Path(model_path).name}_{split}" + ("_tta" if tta else "")
    title = f"{Path(model_path).name} on {split}" + (" (flip TTA)" if tta else "") + f" [{classifier.backend}]"
    json_path = write_json(out_dir / f"{stem}.json", {
        "model": str(model_path), "backend": classifier.backend, "data": str(data), "split": split,
        "tta": tta, "skipped_rows": faces.skipped, **metrics.as_dict(),
    })
    png_path = plot_confusion(metrics, out_dir / f"{stem}.png", title=title)
    notes = "".join(f"{note}\n" for note in faces.notes)
    return EvaluationReport(metrics, notes + format_metrics(metrics, title), json_path, png_path)
