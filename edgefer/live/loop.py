"""`edgefer run`: the on-device loop. Capture -> detect -> crop -> classify -> (smooth) -> draw -> write.

SIGTERM (`systemctl stop`) and SIGHUP end the loop exactly as Ctrl-C does: the current frame finishes,
outputs are closed (a saved .mp4 is finalised and plays), and the summary's exit code names the signal.
Imports neither TensorFlow nor the `mtcnn` package.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
import threading
import time

from edgefer.detect import Detection
from edgefer.live.config import EXIT_DAMAGED, EXIT_SIGNAL, STAGES, RunConfig, RunSummary
from edgefer.live.outputs import Outputs
from edgefer.live.sources import FrameSource
from edgefer.pipeline import FacePipeline
from edgefer.pipeline.draw import draw_faces
from edgefer.pipeline.result import Result
from edgefer.runtime import DEFAULT_MODEL


class Stopped(KeyboardInterrupt):
    """A stop signal other than SIGINT, raised in the loop's thread."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


@contextlib.contextmanager
def stop_signals():
    """Turn SIGTERM and SIGHUP into a KeyboardInterrupt while the loop runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(number, _frame):
        raise Stopped(signal.Signals(number).name)

    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def run(config: RunConfig, on_frame=None, log=None) -> RunSummary:
    """Run the loop until the source ends, --max-frames, a stop signal or a source failure.

    `on_frame(record)` receives each frame's record (the JSON Lines schema: frame, timestamp, file, faces);
    `log(line)` hears what the loop starts (the browser view's address).
    """
    config.validate()
    with _browser_view(config, log) as view:
        return _loop(config, on_frame, view, log)


@contextlib.contextmanager
def _browser_view(config: RunConfig, log):
    """The --serve server around the loop, or nothing."""
    if not config.serve:
        yield None
        return
    from edgefer.live.serve import LiveServer, LiveState

    state = LiveState(Path(config.model or DEFAULT_MODEL).name, config.detector, config.serve_stall_seconds)
    with LiveServer(config.serve, state, config.serve_token, config.serve_max_viewers) as server:
        if log:
            log(f"serving {server.url}" + (" (token required)" if server.token else ""))
            if not server.token and server.host not in ("127.0.0.1", "localhost", "::1"):
                log(f"warning: --serve {config.serve} is reachable from the network without a token; "
                    f"set EDGEFER_SERVE_TOKEN (or --serve-token)")
        yield state


def _loop(config: RunConfig, on_frame, view, log=None) -> RunSummary:
    source = FrameSource(config.source, config.resolution, config.retry_seconds, log=log, loop=config.loop,
                         realtime=config.realtime)
    pipeline = FacePipeline.from_options(config, providers=config.providers, smoothing=config.smoothing)
    photos = source.kind in ("image", "folder")   # unrelated pictures: no tracks, no held boxes between them
    if log and config.save and source.kind in ("camera", "stream") and config.save.lower().endswith(".mp4"):
        log(f"note: --save {config.save}: an .mp4 plays only once closed; a power cut loses it (.mkv survives)")
    summary = RunSummary()
    detections: list[Detection] = []
    clock = time.perf_counter
    started = clock()
    with Outputs(config, source) as outputs, stop_signals():
        frames = source.frames()
        try:
            while config.max_frames is None or summary.frames < config.max_frames:
                t0 = clock()
                frame = next(frames, None)
                if frame is None:
                    break
                t1 = clock()
                if photos:
                    pipeline.reset()
                if photos or summary.frames % config.detect_every == 0:
                    detections = pipeline.detect(frame.image)
                t2 = clock()
                faces = pipeline.classify(frame.image, detections)
                t3 = clock()
                record = Result(faces, frame.image, frame.file, frame.index, frame.timestamp).as_record()
                drawing = outputs.needs_drawing or (view is not None and view.wants_frames())
                annotated = draw_faces(frame.image, faces) if drawing else None
                outputs.write(frame, record, annotated)
                t4 = clock()
                stages = dict(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)))
                for stage, seconds in stages.items():
                    summary.stage_ms[stage] += seconds * 1000
                if view is not None:
                    view.publish(record, annotated, stages)
                summary.frames += 1
                summary.faces += len(faces)
                if on_frame:
                    on_frame(record)
            reached = config.max_frames is not None and summary.frames >= config.max_frames
            summary.stopped = "max frames" if reached else source.stopped
            summary.exit_code = EXIT_DAMAGED if source.damaged and not reached else 0
        except KeyboardInterrupt as interrupt:
            name = interrupt.name if isinstance(interrupt, Stopped) else "SIGINT"
            summary.stopped = f"interrupted ({name})"
            summary.exit_code = EXIT_SIGNAL[name]
        finally:
            frames.close()
            summary.seconds = clock() - started
            summary.unreadable = list(source.unreadable)
            summary.reconnects = source.reconnects
            summary.saved_video = None if outputs.video_path is None else str(outputs.video_path)
    return summary

