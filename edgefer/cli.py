"""The `edgefer` command line: thin wrappers over library functions.

TensorFlow is imported only inside the commands that train or export.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    help="edgefer: facial expression recognition from FER-2013 to an edge device.\n\n"
    "Typical flow: train -> evaluate -> export -> profile -> run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DATA_HELP = "FER-2013 CSV (Kaggle layout, plain or .gz) or an image folder with one sub-folder per class."


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


TTA_SHIFT_HELP = ("With TTA, also average over both views moved this many pixels left/right/up/down "
                  "(10 views, 10x classify cost; implies --tta).")


def _known_errors():
    from edgefer.data import DataError

    return (DataError, ValueError, FileNotFoundError)


@app.command()
def train(
    model: str = typer.Option("mini_xception", help="Model name (mini_xception, vgg, resnet50, cnn) or 'all'."),
    data: Optional[str] = typer.Option(None, help=DATA_HELP),
    recipe: str = typer.Option("paper", help="Named configuration: paper, best (the shipped model), distil (a distilled second schedule), swa (a weight-averaged second schedule), quick."),
    epochs: Optional[int] = typer.Option(None, help="Epochs (default: the recipe's)."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size (default: the recipe's)."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (default: the recipe's)."),
    schedule: Optional[str] = typer.Option(None, help="plateau (ReduceLROnPlateau), cosine (with warm-up), cyclic (cosine restarts) or constant."),
    cycle_epochs: Optional[int] = typer.Option(None, help="Epochs per cycle of the cyclic schedule."),
    l2: Optional[float] = typer.Option(None, help="L2 weight decay factor (default: the model's)."),
    label_smoothing: Optional[float] = typer.Option(None, help="Label smoothing of the cross-entropy."),
    sam_rho: Optional[float] = typer.Option(None, help="Sharpness-aware minimisation: ascent radius (e.g. 0.05; two passes per step); 0: off."),
    branches: Optional[int] = typer.Option(None, help="mini_xception only: train a re-parameterized form with N parallel conv+BN branches per convolution (plus 1x1 and identity branches), merged into the plain 58,423-parameter model at the end; 0: off."),
    width: Optional[float] = typer.Option(None, help="Multiplier on every hidden layer's filters/units (1 = the paper's)."),
    dropout: Optional[float] = typer.Option(None, help="Dropout rate (default: the model's; mini_xception: none)."),
    mixup: Optional[float] = typer.Option(None, help="Mixup Beta(alpha, alpha); 0 turns it off."),
    weights: Optional[str] = typer.Option(None, help="Start from this trained .keras model's weights (same model and width) instead of random ones: fine-tuning, a second schedule."),
    teacher: Optional[List[str]] = typer.Option(None, help="Distil from this trained .keras teacher (e.g. a vgg run's weights/model.keras); repeat for an ensemble."),
    distill_weight: Optional[float] = typer.Option(None, help="Share of the teacher's softened probabilities in the target (default 0.5)."),
    distill_temperature: Optional[float] = typer.Option(None, help="Temperature that softens the teacher's probabilities (default 2)."),
    no_augment: bool = typer.Option(False, "--no-augment", help="Train without augmentation."),
    rotation: Optional[float] = typer.Option(None, min=0, help="Augmentation: largest random rotation, degrees (recipe default 10)."),
    shift: Optional[float] = typer.Option(None, min=0, max=0.5, help="Augmentation: largest random shift, fraction of the size (default 0.1)."),
    zoom: Optional[float] = typer.Option(None, min=0, max=0.5, help="Augmentation: largest random zoom in or out, fraction (default 0.1)."),
    flip: Optional[bool] = typer.Option(None, "--flip/--no-flip", help="Augmentation: random horizontal flips (default on)."),
    clean_epochs: Optional[int] = typer.Option(None, help="Train the last N epochs without augmentation (like Ultralytics' close_mosaic); default 0."),
    balance_classes: bool = typer.Option(False, help="Weight samples by inverse class frequency."),
    patience: Optional[int] = typer.Option(None, help="Early-stopping patience in epochs (validation accuracy)."),
    precise_bn: bool = typer.Option(True, help="Recompute batch-norm statistics before each validation."),
    swa_start: Optional[int] = typer.Option(None, help="Stochastic weight averaging: average the weights from this epoch on (every epoch; with the cyclic schedule each cycle's end); the average competes for the best checkpoint (0: off)."),
    seed: int = typer.Option(0, help="Random seed (data order, augmentation, initial weights)."),
    input_size: int = typer.Option(48, help="Square input size in pixels."),
    train_split: str = typer.Option("Training", help="CSV Usage value to train on."),
    val_split: str = typer.Option("PublicTest", help="CSV Usage value to select the best epoch on."),
    test_split: Optional[str] = typer.Option(None, help="CSV Usage value to report at the end (e.g. PrivateTest)."),
    val_fraction: float = typer.Option(0.1, help="Image folders: stratified validation fraction."),
    test_fraction: float = typer.Option(0.1, help="Image folders: stratified test fraction."),
    limit: Optional[int] = typer.Option(None, help="Use at most this many images per split (quick runs)."),
    skip_bad: bool = typer.Option(False, help="Skip malformed rows/images and report how many, instead of failing."),
    name: str = typer.Option("", help="Run name (default: the model name); runs/train/<name>[N]."),
    project: str = typer.Option("runs/train", help="Folder that holds the run directories."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this directory from its last checkpoint (--epochs and --clean-epochs may change)."),
    quiet: bool = typer.Option(False, help="One line per epoch instead of a progress bar."),
):
    """Train a model; writes runs/train/<name>/ with weights, history, metrics and plots."""
    from edgefer import training

    verbose = 2 if quiet or not sys.stdout.isatty() else 1
    try:
        if resume is not None:
            result = training.resume(resume, log=typer.echo, verbose=verbose, epochs=epochs,
                                     clean_epochs=clean_epochs)
            _print_train_results([result])
            return
        if not data:
            fail("--data is required: " + DATA_HELP)
        from edgefer.models import MODELS, check_model_name
        from edgefer.pipeline import NO_AUGMENT

        names = list(MODELS) if model == "all" else [check_model_name(model)]
        results = []
        for model_name in names:
            config = training.config_from_recipe(
                recipe, model=model_name, data=data, epochs=epochs, batch_size=batch_size, lr=lr,
                schedule=schedule, cycle_epochs=cycle_epochs, l2=l2, width=width, dropout=dropout, label_smoothing=label_smoothing, sam_rho=sam_rho, branches=branches, patience=patience,
                init_weights=weights, teacher=teacher or None, distill_weight=distill_weight, distill_temperature=distill_temperature,
                precise_bn=precise_bn, swa_start=swa_start, clean_epochs=clean_epochs, seed=seed,
                input_size=input_size, train_split=train_split,
                val_split=val_split, test_split=test_split, val_fraction=val_fraction,
                test_fraction=test_fraction, limit=limit, skip_bad=skip_bad,
                name=name if name and len(names) == 1 else (f"{name}_{model_name}" if name else ""),
                project=project, balance_classes=balance_classes,
            )
            if no_augment:
                config.augment = NO_AUGMENT
            config.augment = _augment_overrides(config.augment, rotation_degrees=rotation, shift=shift,
                                                zoom=zoom, horizontal_flip=flip, mixup_alpha=mixup)
            typer.echo(f"training {model_name} with recipe {recipe!r}")
            results.append(training.train(config, log=typer.echo, verbose=verbose))
        _print_train_results(results)
    except _known_errors() as error:
        fail(str(error))
    except KeyboardInterrupt:
        fail("interrupted: the last finished epoch is checkpointed; continue with edgefer train --resume RUN_DIR",
             code=130)


def _augment_overrides(augment, **values):
    """The recipe's augmentation with the options given on the command line (None: keep)."""
    import dataclasses

    return dataclasses.replace(augment, **{k: v for k, v in values.items() if v is not None})


def _print_train_results(results) -> None:
    typer.echo("")
    typer.echo(f"{'run':<40}{'epochs':>7}{'split':>12}{'accuracy':>10}{'macro-F1':>10}{'img/s':>8}")
    for result in results:
        for split, metrics in result.metrics.items():
            typer.echo(f"{str(result.run_dir):<40}{result.epochs_run:>7}{split:>12}"
                       f"{metrics['accuracy']:>10.4f}{metrics['macro_f1']:>10.4f}{result.images_per_second:>8.0f}")
    typer.echo(f"\nbest weights: {results[-1].best_model}")


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Model file (.keras; .tflite and .onnx once exported)."),
    data: str = typer.Option(..., help=DATA_HELP),
    split: str = typer.Option("PublicTest", help="CSV Usage value, or train/val/test of an image folder."),
    tta: bool = typer.Option(False, help="Average the prediction with that of the mirrored face."),
    tta_shift: int = typer.Option(0, min=0, help=TTA_SHIFT_HELP),
    limit: Optional[int] = typer.Option(None, help="Evaluate at most this many images."),
    skip_bad: bool = typer.Option(False, help="Skip malformed rows/images instead of failing."),
    threads: Optional[int] = typer.Option(None, help="Inference threads (default: the runtime's)."),
    out: Path = typer.Option(Path("runs/evaluate"), help="Folder for metrics.json and confusion.png."),
    seed: int = typer.Option(0, help="Seed of the stratified split for image folders."),
):
    """Accuracy, per-class accuracy, macro-F1 and the normalised confusion matrix of a model."""
    from edgefer.evaluation import evaluate_model

    try:
        report = evaluate_model(model, data, split, tta=tta, limit=limit, skip_bad=skip_bad,
                                threads=threads, out_dir=out, seed=seed, tta_shift=tta_shift)
    except _known_errors() as error:
        fail(str(error))
    typer.echo(report.text)
    typer.echo(f"\nwrote {report.json_path} and {report.png_path}")


@app.command()
def export(
    model: Path = typer.Argument(..., help="The .keras model to export."),
    data: Optional[str] = typer.Option(None, help="Labelled faces to validate on. " + DATA_HELP),
    split: str = typer.Option("PublicTest", help="Split of --data to validate on."),
    formats: Optional[str] = typer.Option(None, help="Comma-separated: float32,float16,dynamic,int8,onnx,onnx_int8 (default: all)."),
    int8: bool = typer.Option(False, "--int8", help="Short for the full-integer formats (int8 TFLite and int8 ONNX)."),
    out: Optional[Path] = typer.Option(None, help="Export folder (default: <model>_export next to the model)."),
    calibration: int = typer.Option(500, help="Training faces used to calibrate int8 quantisation."),
    calibration_data: Optional[str] = typer.Option(None, help="Data for calibration (default: --data's training split)."),
    threshold: float = typer.Option(1.0, help="Fail an export whose accuracy falls more than this many points below Keras."),
    threads: int = typer.Option(1, help="Threads for the latency column."),
    limit: Optional[int] = typer.Option(None, help="Validate on at most this many faces."),
):
    """Export to TFLite (float32/float16/dynamic/int8) and ONNX; validate each file in its runtime."""
    from convert.export import ExportError, export_model, format_table, parse_formats

    try:
        chosen = parse_formats(formats, int8_only=int8)
        rows, out_dir = export_model(model, out, chosen, data, split, calibration, calibration_data,
                                     threshold, threads, limit, log=typer.echo)
    except (ExportError, *_known_errors()) as error:
        fail(str(error))
    typer.echo("\n" + format_table(rows))
    typer.echo(f"\nwrote {out_dir}/export.md and export.json")
    if not all(r.ok for r in rows):
        fail("some exports failed validation (see Status)", code=1)


@app.command()
def run(
    camera: Optional[int] = typer.Option(None, help="Camera index for OpenCV VideoCapture (e.g. 0)."),
    source: Optional[str] = typer.Option(None, help="Video file, image, folder of images or stream URL; 'demo' for the shipped photo."),
    model: Optional[str] = typer.Option(None, help="Classifier .tflite/.onnx/.keras (default: the shipped int8 mini-Xception)."),
    device: Optional[str] = typer.Option(None, help="Device profile: rpi4, jetson, or a profile JSON path."),
    detector: Optional[str] = typer.Option(None, help="Face detector: mtcnn (LiteRT) or haar (OpenCV). [default: mtcnn]"),
    min_face_size: Optional[int] = typer.Option(None, help="Smallest face to detect, pixels. [default: 40]"),
    detect_every: Optional[int] = typer.Option(None, help="Detect every k frames, holding tracked boxes in between. [default: 1]"),
    smoothing: Optional[float] = typer.Option(None, help="EMA weight of the past for each tracked face's probabilities (0 = off)."),
    threads: Optional[int] = typer.Option(None, help="Inference threads. [default: 1]"),
    margin: Optional[float] = typer.Option(None, help="Enlarge each face box by this fraction before cropping."),
    resolution: Optional[str] = typer.Option(None, help="Camera capture size WxH, e.g. 640x480."),
    tta: bool = typer.Option(False, help="Average each face's prediction with its mirror image (2x classify cost)."),
    tta_shift: Optional[int] = typer.Option(None, min=0, help=TTA_SHIFT_HELP),
    max_frames: Optional[int] = typer.Option(None, help="Stop after this many frames."),
    save: Optional[str] = typer.Option(None, help="Annotated video (.mp4/.avi), or a folder for annotated images."),
    json_out: Optional[str] = typer.Option(None, "--json", help="JSON Lines per frame (flushed every frame)."),
    show: bool = typer.Option(True, help="Show a window when OpenCV has a GUI and a display exists."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print every face of every frame."),
):
    """The real-time loop: detect faces, classify expressions, overlay, save; no TensorFlow needed."""
    from edgefer import live
    from edgefer.devices import load_profile

    try:
        profile = load_profile(device) if device else {}
        options = {k: v for k, v in dict(
            model=model, detector=detector, min_face_size=min_face_size, detect_every=detect_every,
            smoothing=smoothing, threads=threads, margin=margin, tta=tta or None,
            tta_shift=tta_shift).items() if v is not None}
        size = resolution or profile.get("resolution")
        config = live.RunConfig(
            source=_run_source(camera, source), max_frames=max_frames, save=save, json_path=json_out,
            show=show, resolution=_parse_resolution(size) if size else None,
            providers=profile.get("providers"),
            **{**{k: v for k, v in profile.items() if k in live.RunConfig.__dataclass_fields__}, **options},
        )

        def report(index, faces):
            if verbose:
                for face in faces:
                    typer.echo(f"frame {index}: face {face['id']} {face['box']} {face['emotion']} "
                               f"{face['probabilities'][face['emotion']]:.2f}")

        summary = live.run(config, on_frame=report)
    except (live.SourceError, *_known_errors()) as error:
        fail(str(error))
    except OSError as error:  # e.g. --json or --save where it cannot be written
        fail(f"{getattr(error, 'filename', '') or ''}: {error.strerror or error}".lstrip(": "))
    if not quiet:
        typer.echo(f"source {config.source}, detector {config.detector}, model {config.model or 'shipped int8'}")
    _print_run_summary(summary)


def _run_source(camera, source) -> str:
    if camera is not None and source is not None:
        fail("give either --camera or --source, not both")
    if source == "demo":
        from edgefer.live import DEMO_IMAGE

        return str(DEMO_IMAGE)
    return str(camera) if camera is not None else (source or "0")


def _parse_resolution(text) -> tuple[int, int]:
    if isinstance(text, (list, tuple)):
        return int(text[0]), int(text[1])
    try:
        width, height = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        fail(f"--resolution {text!r}: expected WIDTHxHEIGHT, e.g. 640x480")
    return width, height


def _print_run_summary(summary) -> None:
    ms = summary.mean_ms()
    typer.echo(f"{'frames':>8}{'faces':>8}{'FPS':>9}" + "".join(f"{s + ' ms':>12}" for s in ms))
    typer.echo(f"{summary.frames:>8}{summary.faces:>8}{summary.fps:>9.1f}" + "".join(f"{v:>12.2f}" for v in ms.values()))
    typer.echo(f"stopped: {summary.stopped}")


@app.command()
def profile(
    model: str = typer.Option("all", help="Model to profile (mini_xception, vgg, resnet50, cnn) or 'all'."),
    data: str = typer.Option(..., help=DATA_HELP),
    epochs: int = typer.Option(1, help="Training epochs per model."),
    train_images: int = typer.Option(4096, help="Training images per epoch (the step budget; 0 = all)."),
    test_images: int = typer.Option(0, help="Validation images for the test stage (0 = the whole split)."),
    batch_size: int = typer.Option(32, help="Batch size."),
    interval: float = typer.Option(0.5, help="Sampling interval in seconds."),
    edge: bool = typer.Option(True, help="Also export and measure size, latency and inference memory per runtime."),
    devices: str = typer.Option("", help="'cpu,gpu': also the CPU-vs-GPU training-time table (GPU columns say when absent)."),
    device_epochs: str = typer.Option("2", help="Epoch counts for the CPU-vs-GPU table, e.g. 2,10,30,50."),
    out: Path = typer.Option(Path("runs/profile"), help="Output folder."),
):
    """Train and test each model in a sampled child process: the paper's Tables 2-5 plus edge numbers."""
    from edgefer.models import MODELS
    from edgefer.profiling import ProfileConfig, run_profile

    try:
        epochs_list = [int(v) for v in device_epochs.split(",") if v.strip()]
    except ValueError:
        fail(f"--device-epochs {device_epochs!r}: expected comma-separated integers, e.g. 2,10")
    config = ProfileConfig(
        models=list(MODELS) if model == "all" else [model], data=data, epochs=epochs,
        train_images=train_images or None, test_images=test_images or None, batch_size=batch_size,
        interval=interval, out=str(out), edge=edge,
        devices=[d.strip() for d in devices.split(",") if d.strip()], device_epochs=epochs_list)
    try:
        run_profile(config, log=typer.echo)
    except _known_errors() as error:
        fail(str(error))
    typer.echo("\n" + (out / "summary.md").read_text())


@app.command()
def sweep(
    data: str = typer.Option(..., help=DATA_HELP),
    space: Optional[list[str]] = typer.Option(None, help="NAME=log:LOW:HIGH | float:LOW:HIGH | int:LOW:HIGH | choice:A,B (repeat)."),
    space_file: Optional[str] = typer.Option(None, help="YAML search space with the same keys."),
    sampler: str = typer.Option("tpe", help="grid, random or tpe."),
    trials: Optional[int] = typer.Option(None, help="Trials to finish in total (default 20; grid: its size)."),
    model: str = typer.Option("mini_xception", help="Model to train in every trial."),
    recipe: str = typer.Option("paper", help="Base recipe of every trial."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per trial (unless swept)."),
    limit: Optional[int] = typer.Option(None, help="At most this many images per split."),
    prune: bool = typer.Option(True, help="Stop poor trials early (median rule on validation accuracy)."),
    grid_points: int = typer.Option(3, help="Grid sampler: values per numeric range."),
    seed: int = typer.Option(0, help="Sampler seed."),
    out: Path = typer.Option(Path("runs/sweep/study"), help="Study folder (study.db, trials/, sweep.md, sweep.png); rerun to resume."),
):
    """Hyper-parameter search over `edgefer train` with Optuna; stop and rerun to resume."""
    from edgefer import sweep as sweeping
    from edgefer.training import config_from_recipe

    try:
        dimensions = sweeping.parse_space(space, space_file)
        total = trials or (sweeping.grid_size(dimensions, grid_points) if sampler == "grid" else 20)
        base = config_from_recipe(recipe, model=model, data=data, epochs=epochs, limit=limit, seed=seed)
        report = sweeping.run_sweep(sweeping.SweepConfig(base, dimensions, sampler, total, str(out), prune,
                                                         grid_points, seed), log=typer.echo)
    except (sweeping.SweepError, *_known_errors()) as error:
        fail(str(error))
    typer.echo("\n" + (out / "sweep.md").read_text())
    if report["best"] is None:
        fail("no trial completed", code=1)


@app.command()
def prune(
    model: Path = typer.Argument(..., help="Trained .keras model to prune (e.g. runs/train/<name>/weights/model.keras)."),
    data: str = typer.Option(..., help=DATA_HELP),
    criterion: str = typer.Option("kernel", help="Comma-separated, applied in order: kernel (filter importance "
                                  "sqrt(sum w^2 / k^2)), angle (merge near-parallel/opposite units), zero (dead units)."),
    metric: str = typer.Option("loss", help="Stop on validation 'loss' rising or 'accuracy' falling by --threshold."),
    rank: str = typer.Option("global", help="kernel criterion: 'global' (least important filter anywhere, the "
                             "study's rule) or 'layer' (relative to its layer's mean importance)."),
    threshold: float = typer.Option(0.1, help="Largest allowed rise in loss (or fall in accuracy) vs the unpruned model."),
    step: int = typer.Option(1, help="Channels removed per step (the study removes one at a time)."),
    target_fraction: Optional[float] = typer.Option(None, help="Stop once parameters are at most this fraction of the original."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many steps."),
    step_finetune_epochs: int = typer.Option(0, help="Fine-tuning epochs after every kept step."),
    finetune_epochs: int = typer.Option(0, help="Fine-tuning epochs once pruning stops."),
    finetune_lr: float = typer.Option(3e-4, help="Adam learning rate of the fine-tuning."),
    angle: float = typer.Option(15.0, help="angle criterion: merge units within this many degrees of parallel/opposite."),
    limit: Optional[int] = typer.Option(None, help="At most this many images per split (quick runs)."),
    name: str = typer.Option("", help="Run name (default: the model file's stem); runs/prune/<name>[N]."),
    project: Path = typer.Option(Path("runs/prune"), help="Parent folder of run directories."),
):
    """Structured pruning that removes whole filters and units; writes a smaller .keras and a per-step table."""
    from edgefer.pruning import PruneConfig, run_prune

    config = PruneConfig(
        model=str(model), data=data, criteria=tuple(c.strip() for c in criterion.split(",") if c.strip()),
        metric=metric, rank=rank, threshold=threshold, step=step, target_fraction=target_fraction,
        max_steps=max_steps, step_finetune_epochs=step_finetune_epochs, finetune_epochs=finetune_epochs,
        finetune_lr=finetune_lr, angle_degrees=angle, limit=limit, name=name, project=str(project))
    try:
        result = run_prune(config, log=typer.echo)
    except _known_errors() as error:
        fail(str(error))
    typer.echo("\n" + (result.run_dir / "steps.md").read_text())
    typer.echo(f"pruned model: {result.model_path}  (export: edgefer export {result.model_path} --data ...)")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
