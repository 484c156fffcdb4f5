"""`edgefer evaluate`: metrics of any model format on a labelled split, written as JSON (and a PNG where
matplotlib is installed) into a new evaluation directory, so no earlier result is overwritten."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgefer.data import DATA_HELP, DataSpec, load_split
from edgefer.errors import EdgeferError
from edgefer.files import model_label, new_run_dir, read_json, write_json
from edgefer.metrics import Metrics, compute_metrics, format_metrics
from edgefer.options import check, like, option
from edgefer.pipeline.config import PipelineOptions
from edgefer.plots import plot_confusion, plots_available
from edgefer.runtime import load_classifier


@dataclass
class EvaluateConfig:
    model: Path
    data: str | None = option(None, help=DATA_HELP, show_default="a run directory's data")
    split: str | None = option(None, help="CSV Usage value, or all/train/val/test of an image folder.",
                               show_default="PublicTest; all for an image folder")
    tta: bool = like(PipelineOptions, "tta")
    tta_shift: int = like(PipelineOptions, "tta_shift")
    limit: int | None = option(None, min=1, help="Evaluate at most this many images.", show_default="all")
    skip_bad: bool = option(False, help="Skip malformed rows/images instead of failing.")
    threads: int | None = option(None, min=1, max=256, help="Inference threads.", show_default="the runtime's")
    project: Path = option(Path("runs/evaluate"), aliases=("--out",),
                           help="Folder that holds the evaluation directories.")
    name: str = option("", help="Evaluation name; <project>/<name>[N].", show_default="<model>_<split>")
    seed: int = option(0, help="Seed of the stratified split for image folders.")

    @classmethod
    def resolve(cls, model, data=None, split=None, **options) -> "EvaluateConfig":
        """A config for a model file, or for a training run directory: its weights/model.keras, and its
        data and validation split unless given."""
        model = Path(model)
        if model.is_dir():
            args_path = model / "args.json"
            if not args_path.is_file():
                raise FileNotFoundError(f"{model}: a folder but not a training run (no args.json); "
                                        "expected a model file or runs/train/<name>")
            try:
                args = read_json(args_path)
            except ValueError as error:
                raise EdgeferError(f"{args_path}: not valid JSON ({error})") from None
            data = data or args.get("data")
            split = split or args.get("val_split") or "PublicTest"
            model = model / "weights" / "model.keras"
            if not model.is_file():
                raise FileNotFoundError(f"{model}: missing (the run has not finished; evaluate weights/best.keras "
                                        "or finish it with edgefer train --resume)")
        if not data:
            raise EdgeferError("--data is required for a model file: " 
                             "a FER-2013 CSV or an image folder with one sub-folder per class")
        if split is None:   # a CSV: its PublicTest; an image folder given on its own: every image in it
            split = "all" if Path(str(data)).is_dir() else "PublicTest"
        config = cls(model=model, data=str(data), split=split, **options)
        check(config)
        return config


@dataclass
class EvaluationReport:
    metrics: Metrics
    text: str
    json_path: Path
    png_path: Path | None


def evaluate_model(config: EvaluateConfig, log=print) -> EvaluationReport:
    """Classify every face of the split and write metrics.json (+ confusion.png) to a new directory."""
    tta = config.tta or config.tta_shift > 0
    classifier = load_classifier(config.model, threads=config.threads)
    spec = DataSpec(config.data, seed=config.seed, limit=config.limit, skip_bad=config.skip_bad,
                    size=classifier.info.input_size)
    faces = load_split(spec, config.split)
    n_classes = len(classifier.info.class_names)
    if int(faces.labels.max(initial=0)) >= n_classes:
        raise EdgeferError(f"{config.model}: predicts {n_classes} classes but {config.data} has labels up to "
                         f"{int(faces.labels.max())}; expected a 7-class FER model")
    if tta:
        probabilities = classifier.predict_tta(faces.images, shift=config.tta_shift)
    else:
        probabilities = classifier.predict(faces.images)
    metrics = compute_metrics(probabilities, faces.labels)
    suffix, label = _tta_names(tta, config.tta_shift)
    out_dir = new_run_dir(config.project, config.name or f"{model_label(config.model)}_{config.split}{suffix}")
    title = f"{config.model.name} on {config.split}{label} [{classifier.backend}]"
    json_path = write_json(out_dir / "metrics.json", {
        "model": str(config.model), "backend": classifier.backend, "data": config.data, "split": config.split,
        "tta": tta, "tta_shift": config.tta_shift, "skipped_rows": faces.skipped, **metrics.as_dict(),
    })
    png_path = None
    if plots_available():
        png_path = plot_confusion(metrics, out_dir / "confusion.png", title=title)
    else:
        log("no confusion.png: matplotlib is not installed (pip install matplotlib, or the train extra)")
    notes = "".join(f"{note}\n" for note in faces.notes)
    return EvaluationReport(metrics, notes + format_metrics(metrics, title), json_path, png_path)


def _tta_names(tta: bool, shift: int) -> tuple[str, str]:
    """Folder-name suffix and title note of a TTA setting."""
    if shift:
        return f"_tta_shift{shift}", f" (flip + {shift}px shift TTA, 10 views)"
    return ("_tta", " (flip TTA)") if tta else ("", "")
