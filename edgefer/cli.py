"""The `edgefer` command line: each command builds one config from the options it was given and calls one
library function (usable from Python without the CLI).

Heavy packages are imported inside the commands that need them, after the environment that quiets
TensorFlow is set; `edgefer -v CMD` shows every library's log lines.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer
import typer.core

from edgefer.convert.config import ExportConfig
from edgefer.bulk.config import BulkConfig
from edgefer.cli_options import config_options, pick
from edgefer.data import DATA_HELP
from edgefer.evaluation import EvaluateConfig
from edgefer.live.config import RunConfig
from edgefer.profile.run import ProfileConfig
from edgefer.prune.config import PruneConfig
from edgefer.sweep import SweepConfig
from edgefer.train.config import TrainConfig
from edgefer.train.pipeline import AugmentConfig
from edgefer.tfenv import StderrFilter, configure_tensorflow

# click's exception base, whether typer uses click or (typer >= 0.26) its own vendored copy of it
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class OneLineErrors(typer.core.TyperGroup):
    """Usage errors (a value outside an option's declared range, an unknown option) as one `error:` line
    and exit 2, like every other bad input, instead of click's usage block."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as error:
            if type(error).__name__ == "NoArgsIsHelpError":   # bare `edgefer`: the help, not an error
                error.show()
                sys.exit(0)
            typer.echo(f"error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    help="edgefer: facial expression recognition from FER-2013 to an edge device.\n\n"
    "Typical flow: train -> evaluate -> export -> profile -> run.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,   # plain help: the rich renderer shows "<bool>" for flags under click 8.4
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

TRAIN_PACKAGES = ("keras", "tensorflow")
EXPORT_PACKAGES = ("keras", "tensorflow", "tf2onnx", "onnx")


def fail(message: str, code: int = 2) -> None:
    """One line on stderr and a non-zero exit: the only way a command reports bad input."""
    first = " ".join(str(message).split("\n")[0].split()) or "failed"
    typer.secho(f"error: {first}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def one_line_errors(*extra: type[BaseException], interrupted: str | None = "interrupted"):
    """Map every expected failure to one line and an exit code; a real bug still shows its traceback.
    `interrupted=None` lets Ctrl-C through to the caller."""
    from edgefer.errors import EdgeferError
    from edgefer.extras import MissingExtra

    try:
        yield
    except typer.Exit:
        raise
    except MissingExtra as error:
        fail(str(error))
    except (EdgeferError, FileNotFoundError, NotADirectoryError, IsADirectoryError, *extra) as error:
        fail(str(error), code=getattr(error, "exit_code", 2))
    except PermissionError as error:   # edgefer's own checks name the option and folder; the system's, the file
        fail(str(error) if error.filename is None else
             f"{error.filename}: permission denied (expected a file or folder you can write to)")
    except OSError as error:
        fail(f"{error.filename or ''}: {error.strerror or error}".lstrip(": "))
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        fail(interrupted, code=130)


def needs_extra(command: str, packages=TRAIN_PACKAGES, extra: str = "train") -> None:
    """Stop with one line when the packages of an extra are missing (checked without importing them)."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        fail(f"edgefer {command} needs the {extra} extra (missing: {', '.join(missing)}): "
             f"pip install 'edgefer[{extra}]'")


def given(ctx: typer.Context, *skip: str) -> dict:
    """The options the user typed (not their defaults), by parameter name: what overrides a recipe."""
    def typed(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    return {name: value for name, value in ctx.params.items() if name not in skip and typed(name)}


def _version(value: bool) -> None:
    if value:
        from edgefer import __version__

        typer.echo(f"edgefer {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show TensorFlow, converter and Ray log lines."),
):
    """edgefer: facial expression recognition from FER-2013 to an edge device."""
    if verbose:
        os.environ["EDGEFER_VERBOSE"] = "1"
    configure_tensorflow()


# --------------------------------------------------------------------------- train


@app.command()
@config_options(TrainConfig, AugmentConfig)
def train(
    ctx: typer.Context,
    no_augment: bool = typer.Option(False, "--no-augment", help="Train without augmentation."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this directory from its last checkpoint "
                                          "(--epochs and --clean-epochs may change; no --data needed).",
                                          show_default=False),
    quiet: bool = typer.Option(False, help="One line per epoch instead of a progress bar."),
    **options,
):
    """Train a model; writes runs/train/<name>/ with weights, history, metrics and plots."""
    needs_extra("train")
    verbose = 2 if quiet or not sys.stdout.isatty() else 1
    try:
        _train_runs(ctx, options["model"], options["data"], options["recipe"], options["name"], resume, verbose)
    except KeyboardInterrupt as stop:
        where = getattr(stop, "run_dir", None) or resume or "RUN_DIR"
        fail(f"interrupted: the last finished epoch is checkpointed (weights/model.keras holds the best so far); "
             f"continue with edgefer train --resume {where}", code=130)


def _train_runs(ctx, model, data, recipe, name, resume, verbose) -> None:
    from edgefer.models import MODELS, check_model_name
    from edgefer.train import config_from_recipe
    from edgefer.train import resume as resume_run
    from edgefer.train import train as train_run
    from edgefer.train.loop import RESUME_CHANGES

    with one_line_errors(interrupted=None):   # the caller names the run to resume
        if resume is not None:
            changes = given(ctx, "resume", "quiet")
            unexpected = sorted(set(changes) - set(RESUME_CHANGES))
            if unexpected:
                fail(f"--resume continues a run as recorded: only --epochs, --clean-epochs and a multi-host job's "
                     f"--coordinator, --num-processes, --process-id may change, "
                     f"not --{unexpected[0].replace('_', '-')}")
            result = resume_run(resume, log=typer.echo, verbose=verbose, **changes)
            _print_train_results([result])
            return
        if not data:
            fail("--data is required: " + DATA_HELP)
        options = given(ctx, "model", "recipe", "resume", "quiet", "name")
        names = list(MODELS) if model == "all" else [check_model_name(model)]
        configs = [config_from_recipe(recipe, **options, model=model_name,
                                      name=name if len(names) == 1 else (f"{name}_{model_name}" if name else ""))
                   for model_name in names]   # every config is checked before the first run starts
        results = []
        for config in configs:
            typer.echo(f"training {config.model} with recipe {recipe!r}")
            results.append(train_run(config, log=typer.echo, verbose=verbose))
        _print_train_results(results)


def _print_train_results(results) -> None:
    typer.echo("")
    typer.echo(f"{'run':<40}{'epochs':>7}{'split':>12}{'accuracy':>10}{'macro-F1':>10}{'img/s':>8}")
    for result in results:
        for split, metrics in result.metrics.items():
            typer.echo(f"{str(result.run_dir or '(process 0 writes it)'):<40}{result.epochs_run:>7}{split:>12}"
                       f"{metrics['accuracy']:>10.4f}{metrics['macro_f1']:>10.4f}{result.images_per_second:>8.0f}")
    for result in (r for r in results if r.model_path is not None):
        typer.echo(f"\nmodel to export: {result.model_path}   (edgefer export {result.model_path} --data ...)")


# --------------------------------------------------------------------------- evaluate


@app.command()
@config_options(EvaluateConfig)
def evaluate(
    model: Path = typer.Argument(..., help="Model file (.keras, .tflite, .onnx), or a training run directory (its weights/model.keras, data and validation split)."),
    **options,
):
    """Accuracy, per-class accuracy, macro-F1 and the normalised confusion matrix of a model."""
    from edgefer.evaluation import evaluate_model

    with one_line_errors():
        report = evaluate_model(EvaluateConfig.resolve(model=model, **options), log=typer.echo)
    typer.echo(report.text)
    typer.echo(f"\nwrote {report.json_path}" + (f" and {report.png_path}" if report.png_path else ""))


# --------------------------------------------------------------------------- export


@app.command()
@config_options(ExportConfig)
def export(
    model: Path = typer.Argument(..., help="The .keras model to export."),
    **options,
):
    """Export to TFLite (float32/float16/dynamic/int8) and ONNX; validate each file in its runtime."""
    needs_extra("export", EXPORT_PACKAGES)
    from edgefer.convert.export import ExportError, export_with_config, format_table

    with one_line_errors(ExportError):
        rows, out_dir = export_with_config(ExportConfig(model=str(model), **pick(ExportConfig, options)),
                                           log=typer.echo)
    typer.echo("\n" + format_table(rows))
    typer.echo(f"\nwrote {out_dir}/export.md and export.json")
    if not all(r.ok for r in rows):
        fail("some exports failed validation (see Status; failed files were not kept)", code=1)


# --------------------------------------------------------------------------- run


@app.command()
@config_options(RunConfig)
def run(
    ctx: typer.Context,
    camera: Optional[int] = typer.Option(None, min=0, help="Camera index for OpenCV VideoCapture (e.g. 0).", show_default=False),
    source: Optional[str] = typer.Option(None, help="Video file, image, folder of images or stream URL; 'demo' for the shipped photo.", show_default="camera 0"),
    device: Optional[str] = typer.Option(None, help="Device profile (rpi4, rpi5, jetson) or a profile .json; explicit options win.", show_default=False),
    resolution: Optional[str] = typer.Option(None, help="Camera capture size WxH, e.g. 640x480.", show_default="the camera's"),
    faces: Optional[bool] = typer.Option(None, "--faces/--no-faces", help="Print every face of every frame.", show_default="on for images and folders"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary."),
    **options,
):
    """The real-time loop: detect faces, classify expressions, overlay, save; no TensorFlow needed."""
    from edgefer import live
    from edgefer.live.devices import apply_profile, load_profile

    with one_line_errors(live.SourceError):
        if camera is not None and source is not None:
            fail("give either --camera or --source, not both")
        explicit = set(given(ctx, "camera", "source", "device", "faces", "quiet"))
        config = RunConfig(source=_run_source(camera, source),
                           resolution=_parse_resolution(resolution) if resolution else None,
                           **{k: "" if k == "model" and v is None else v for k, v in pick(RunConfig, options).items()})
        if device:
            config = apply_profile(config, load_profile(device), explicit)
        kind = live.FrameSource.kind_of(config.source)
        print_faces = faces if faces is not None else kind in ("image", "folder")
        # `--json -` puts the records on standard output: edgefer's own lines go to standard error
        echo = functools.partial(typer.echo, err=config.json_path == "-")
        if config.show and ("show" in explicit or kind == "camera"):
            from edgefer.live.outputs import gui_available

            if not gui_available():
                echo("note: no window: this OpenCV has no GUI (opencv-python-headless) or there is no display; "
                     "watch in a browser with --serve 8080, or pass --no-show")
        progress = _RunProgress(config.source, kind) if sys.stderr.isatty() and not quiet else None

        def report(record):
            if progress:
                progress.update(record)
            if print_faces and not quiet:
                where = record.get("file") or f"frame {record['frame']}"
                for face in record["faces"]:
                    line = (f"{where}: face {face['id']} {face['box']} {face['emotion']} "
                            f"{face['probabilities'][face['emotion']]:.2f}")
                    progress.print(line) if progress else echo(line)

        try:
            summary = live.run(config, on_frame=report, log=progress.print if progress else echo)
        finally:
            if progress:
                progress.stop()
    if not quiet:
        echo(f"source {config.source}, detector {config.detector}, model {config.model or 'shipped int8'}")
    _print_run_summary(summary, echo)
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)


class _RunProgress:
    """`edgefer run`'s progress on a terminal: frames done of the total and FPS for files, a status line every
    few seconds for cameras and streams (as Ultralytics prints `video 1/1 (frame 12/150)`)."""

    def __init__(self, source: str, kind: str):
        import time

        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.clock, self.started, self.frames, self.live = time.perf_counter, time.perf_counter(), 0, kind in (
            "camera", "stream")
        total = None
        if kind == "video":
            import cv2

            capture = cv2.VideoCapture(source)
            total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
            capture.release()
        elif kind == "folder":
            from edgefer.live.sources import FrameSource

            total = len(FrameSource(source).files)
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                            TextColumn("{task.fields[fps]}"), TimeElapsedColumn(), transient=True)
        self.task = self.bar.add_task("frames" if kind != "folder" else "images", total=total, fps="")
        self.last_status = self.started
        self.bar.start()

    def update(self, record: dict) -> None:
        self.frames += 1
        now = self.clock()
        fps = self.frames / max(now - self.started, 1e-6)
        self.bar.update(self.task, advance=1, fps=f"{fps:.1f} FPS")
        if self.live and now - self.last_status >= 5:
            self.last_status = now
            self.print(f"{self.frames} frames, {fps:.1f} FPS, {len(record['faces'])} face(s) in the latest")

    def print(self, line: str) -> None:
        self.bar.console.print(line, highlight=False, markup=False)

    def stop(self) -> None:
        self.bar.stop()


def _run_source(camera, source) -> str:
    if source == "demo":
        from edgefer.live import DEMO_IMAGE

        return str(DEMO_IMAGE)
    return str(camera) if camera is not None else (source or "0")


def _parse_resolution(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        fail(f"--resolution {text!r}: expected WIDTHxHEIGHT, e.g. 640x480")
    if width < 1 or height < 1:
        fail(f"--resolution {text!r}: expected positive WIDTHxHEIGHT, e.g. 640x480")
    return width, height


def _print_run_summary(summary, echo=typer.echo) -> None:
    ms = summary.mean_ms()
    echo(f"{'frames':>8}{'faces':>8}{'FPS':>9}" + "".join(f"{s + ' ms':>12}" for s in ms))
    echo(f"{summary.frames:>8}{summary.faces:>8}{summary.fps:>9.1f}" + "".join(f"{v:>12.2f}" for v in ms.values()))
    if summary.unreadable:
        shown = ", ".join(summary.unreadable[:5]) + (" ..." if len(summary.unreadable) > 5 else "")
        echo(f"unreadable: {len(summary.unreadable)} file(s): {shown}")
    if summary.saved_video:
        echo(f"saved: {summary.saved_video}")
    echo(f"stopped: {summary.stopped}")


# --------------------------------------------------------------------------- bulk


@app.command()
@config_options(BulkConfig)
def bulk(
    sources: List[str] = typer.Argument(..., help="Images, videos, folders (recursive), globs, or text files listing paths or URIs."),
    out: Path = typer.Option(..., help="Results folder: faces/ (Parquet dataset), files.parquet, summary.csv; rerun to resume.", show_default=False),
    **options,
):
    """Expressions for whole archives of images and videos on Ray Data: one Parquet row per face."""
    needs_extra("bulk", ("ray", "pyarrow"), "bulk")
    _quiet_ray_teardown()

    resume = "edgefer bulk " + " ".join(shlex.quote(a) for a in sys.argv[sys.argv.index("bulk") + 1:]) \
        if "bulk" in sys.argv else f"edgefer bulk ... --out {out}"
    with one_line_errors(interrupted=f"interrupted: finished tasks are kept in {out}; resume with: {resume}"):
        config = BulkConfig(sources=list(sources), out=str(out),
                            **{k: "" if k == "model" and v is None else v for k, v in pick(BulkConfig, options).items()})
        report = _bulk_with_progress(config)
    totals = report["totals"]
    typer.echo(f"{'file':<48}{'frames':>8}{'faces':>8}{'dominant':>10}  status")
    for row in report["files"][:50]:
        typer.echo(f"{Path(row['file']).name[:47]:<48}{row['frames']:>8}{row['faces']:>8}{str(row['dominant'] or '-'):>10}  {row['status']}")
    if len(report["files"]) > 50:
        typer.echo(f"... {len(report['files']) - 50} more in {out / 'summary.csv'}")
    typer.echo(f"\n{totals['files']} file(s), {totals['ok']} ok, {totals['frames']} frames, {totals['faces']} faces; "
               f"wrote {out / 'faces'}/, {out / 'files.parquet'}, {out / 'summary.csv'}")
    if totals["ok"] < totals["files"]:
        raise typer.Exit(3)


def _quiet_ray_teardown() -> None:
    """Ray Data's executors shut down in `__del__` at exit; after Ctrl-C that prints an "Exception ignored"
    traceback about a gone Ray session. Those go behind -v; any other unraisable exception still shows."""
    from edgefer.tfenv import verbose

    if verbose():
        return
    default = sys.unraisablehook

    def hook(unraisable):
        trace = unraisable.exc_traceback
        while trace is not None:
            if f"{os.sep}ray{os.sep}" in trace.tb_frame.f_code.co_filename:
                return   # raised inside Ray's own code
            trace = trace.tb_next
        default(unraisable)

    sys.unraisablehook = hook


def _bulk_with_progress(config):
    """run_bulk with a progress bar of tasks, frames and faces per second (on a terminal)."""
    import time

    from edgefer.bulk import run_bulk

    if not sys.stderr.isatty():
        return run_bulk(config, log=typer.echo)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started, seen = time.perf_counter(), {"frames": 0, "faces": 0}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} tasks"),
                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), transient=True) as bar:
        job = bar.add_task("bulk", total=None, detail="")

        def log(line):
            bar.console.print(line)
            if "task(s):" in line:
                bar.update(job, total=int(line.split(", ")[-1].split()[0]) if "to run" in line else None)

        def on_task(record):
            seen["frames"] += int(record["frames"])
            seen["faces"] += int(record["faces"])
            rate = seen["faces"] / max(time.perf_counter() - started, 1e-6)
            bar.update(job, advance=1, detail=f"{seen['frames']} frames, {seen['faces']} faces, {rate:.1f} faces/s")

        return run_bulk(config, log=log, on_task=on_task)


# --------------------------------------------------------------------------- profile


@app.command()
@config_options(ProfileConfig)
def profile(**options):
    """Train and test each model in a sampled child process: the paper's Tables 2-5 plus edge numbers."""
    needs_extra("profile", EXPORT_PACKAGES if options["edge"] else TRAIN_PACKAGES)
    from edgefer.profile import run_profile

    with one_line_errors():
        config = ProfileConfig(**options)
        run_profile(config, log=typer.echo)
    typer.echo("\n" + (Path(config.out) / "summary.md").read_text())


# --------------------------------------------------------------------------- sweep


@app.command()
@config_options(SweepConfig, TrainConfig, only={TrainConfig: ("data", "model", "recipe", "epochs", "limit")})
def sweep(
    space: Optional[List[str]] = typer.Option(None, help="NAME=log:LOW:HIGH | float:LOW:HIGH | int:LOW:HIGH | choice:A,B (repeat).", show_default=False),
    space_file: Optional[str] = typer.Option(None, help="YAML search space with the same keys.", show_default=False),
    **options,
):
    """Hyper-parameter search over `edgefer train` with Optuna; --resume continues a stopped study."""
    needs_extra("sweep", TRAIN_PACKAGES + ("optuna",))
    from edgefer import sweep as sweeping
    from edgefer.train import config_from_recipe

    with one_line_errors(sweeping.SweepError):
        if not options["data"]:
            fail("--data is required: " + DATA_HELP)
        base = config_from_recipe(options["recipe"], **pick(TrainConfig, {k: v for k, v in options.items() if k in (
            "data", "model", "epochs", "limit", "seed")}))
        config = SweepConfig(base, sweeping.parse_space(space, space_file), **pick(SweepConfig, options))
        report = sweeping.run_sweep(config, log=typer.echo)
    typer.echo("\n" + (Path(config.out) / "sweep.md").read_text())
    if report["best"] is None:
        fail("no trial completed", code=1)


# --------------------------------------------------------------------------- prune


@app.command()
@config_options(PruneConfig)
def prune(
    model: Path = typer.Argument(..., help="Trained .keras model to prune (e.g. runs/train/<name>/weights/model.keras)."),
    **options,
):
    """Structured pruning that removes whole filters and units; writes a smaller .keras and a per-step table."""
    needs_extra("prune")
    from edgefer.prune import run_prune

    with one_line_errors():
        result = run_prune(PruneConfig(model=str(model), **options), log=typer.echo)
    typer.echo("\n" + (result.run_dir / "steps.md").read_text())
    typer.echo(f"pruned model: {result.model_path}  (export: edgefer export {result.model_path} --data ...)")


@app.command()
def checks(
    cameras: int = typer.Option(2, min=0, max=16, help="Probe camera indices 0..N-1."),
):
    """What this machine can run: versions, runtimes and detectors (with a timing), OpenCV's window, cameras,
    CPU features."""
    from edgefer.checks import format_checks, run_checks

    with one_line_errors():
        results = run_checks(cameras)
    typer.echo(format_checks(results))
    if any(c.status in ("failed", "missing") and c.what in ("LiteRT int8 (the default model)", "edgefer", "numpy")
           for c in results):
        raise typer.Exit(1)


def console() -> None:  # pragma: no cover - the `edgefer` console script
    """The installed command: C++ library chatter filtered from the terminal (see tfenv.StderrFilter)."""
    if "-v" in sys.argv[1:2] or "--verbose" in sys.argv[1:2]:
        os.environ["EDGEFER_VERBOSE"] = "1"
    StderrFilter().start()
    import warnings

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)

    warnings.showwarning = one_line_warning   # edgefer's own warnings, as one line each
    app()


if __name__ == "__main__":  # pragma: no cover
    console()
