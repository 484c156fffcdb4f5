"""Frame sources: a camera index, a video file, a stream URL, an image or a folder of images (OpenCV).

Photos keep their file name and have no timestamp; a folder is read recursively in sorted order, and an
unreadable file is counted and named rather than stopping the run. A camera or stream that stops is
reopened with backoff for `retry_seconds` (a service should survive a loose cable); a video that ends
before its frame count, or whose frames FFmpeg could not decode (skipped, not classified), is reported as damaged.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import cv2

from edgefer.errors import EdgeferError
from edgefer.live.config import Frame
from edgefer.media import IMAGE_SUFFIXES, load_image
from edgefer.video import CheckedVideo, describe

BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class SourceError(EdgeferError):
    """The source cannot be opened or read; one line. `exit_code` 2: bad input (no such file, not a video);
    3: a camera or stream that is not there (or gone for good) after its retries."""


class FrameSource:
    """Iterates Frames. After iteration, `stopped` says why it ended, `damaged` whether it broke off,
    `unreadable` lists the files of a folder that did not decode, `reconnects` counts reopenings."""

    def __init__(self, source: str, resolution=None, retry_seconds: float = 0.0, sleep=time.sleep, log=None,
                 loop: bool = False, realtime: bool = False):
        self.source, self.resolution, self.retry_seconds, self.sleep = source, resolution, retry_seconds, sleep
        self.loop, self.realtime = loop, realtime
        self.log = log or (lambda line: None)
        self.kind, self.fps = self.kind_of(source), 30.0
        self.stopped, self.damaged = "end of source", False
        self.unreadable: list[str] = []
        self.reconnects = 0
        self.decode_errors: dict[int, list[str]] = {}   # frame -> FFmpeg's errors (a video file's skipped frames)
        self.files = self._list_files() if self.kind in ("image", "folder") else []

    @staticmethod
    def kind_of(source: str) -> str:
        """camera, stream, folder, image or video; SourceError for a path that does not exist."""
        if source.isdigit():
            return "camera"
        if "://" in source:
            return "stream"
        path = Path(source)
        if path.is_dir():
            return "folder"
        if not path.exists():
            raise SourceError(f"--source {source}: no such file, folder, camera index or stream URL")
        return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"

    def input_paths(self) -> list[Path]:
        """The files this source reads (what outputs must never overwrite)."""
        if self.kind in ("camera", "stream"):
            return []
        return [Path(self.source)] + self.files

    def _list_files(self) -> list[Path]:
        path = Path(self.source)
        if path.is_file():
            return [path]
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SourceError(f"--source {path}: no images in this folder (expected {', '.join(sorted(IMAGE_SUFFIXES))})")
        return files

    def frames(self) -> Iterator[Frame]:
        """The source's frames; files again and again with `loop` (indices keep counting), at their own pace
        with `realtime` (a video's frame rate, photos one a second)."""
        files = self.kind in ("image", "folder", "video")
        offset, started = 0, time.perf_counter()
        while True:
            count = 0
            for frame in (self._images() if self.kind in ("image", "folder") else self._video()):
                count += 1
                if self.realtime and files:
                    due = (offset + count - 1) / (self.fps if self.kind == "video" else 1.0)
                    wait = due - (time.perf_counter() - started)
                    if wait > 0:
                        self.sleep(wait)
                yield frame._replace(index=frame.index + offset) if offset else frame
            if not (self.loop and files and count and not self.damaged):
                return
            offset += count

    def _images(self):
        root = Path(self.source)
        for index, file in enumerate(self.files):
            frame, _ = load_image(file)
            if frame is None:
                if self.kind == "image":
                    raise SourceError(f"--source {file}: unreadable image (a truncated JPEG or a file OpenCV "
                                      f"cannot decode)")
                self.unreadable.append(str(file.relative_to(root)))
                continue  # a corrupt file in a folder is counted, the rest still run
            name = file.name if self.kind == "image" else str(file.relative_to(root))
            yield Frame(index, None, frame, name)

    def _open(self):
        if self.kind == "video":
            return CheckedVideo(self.source)
        capture = cv2.VideoCapture(int(self.source) if self.kind == "camera" else self.source)
        if capture.isOpened() and self.kind == "camera" and self.resolution:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.resolution[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.resolution[1])
        return capture

    def _reopen(self, capture):
        """A lost camera or stream, reopened with backoff until `retry_seconds` have passed; None: gone."""
        capture.release()
        waited, attempt = 0.0, 0
        name = f"camera {self.source}" if self.kind == "camera" else self.source
        while waited < self.retry_seconds:
            pause = min(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)], self.retry_seconds - waited)
            self.log(f"{name}: no frames; retry {attempt + 1} in {pause:g} s "
                     f"({self.retry_seconds - waited - pause:g} s of --retry-seconds left after it)")
            self.sleep(pause)
            waited += pause
            attempt += 1
            capture = self._open()
            if capture.isOpened():
                self.reconnects += 1
                return capture
            capture.release()
        return None

    def _video(self):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # one clear message is ours to give
        capture = self._open()
        live = self.kind in ("camera", "stream")
        try:
            if not capture.isOpened():
                capture = self._reopen(capture) if live and self.retry_seconds else capture
                if capture is None or not capture.isOpened():
                    retried = f" after retrying for {self.retry_seconds:g} s" if live and self.retry_seconds else ""
                    what = {"camera": f"--camera {self.source}: could not be opened{retried} (is it connected and free?)",
                            "stream": f"--source {self.source}: stream could not be opened{retried}",
                            "video": f"--source {self.source}: not a video OpenCV can decode"}[self.kind]
                    raise SourceError(what, exit_code=3 if live else 2)
            self.fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
            expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            index, started = 0, time.perf_counter()
            while True:
                ok, frame, errors = capture.read() if self.kind == "video" else (*capture.read(), [])
                if ok and errors:   # FFmpeg's concealed garbage: not a picture to find faces in
                    self.decode_errors[index] = errors
                    index += 1
                    continue
                if not ok or frame is None:
                    if live and self.retry_seconds:
                        reopened = self._reopen(capture)
                        if reopened is not None:
                            capture = reopened
                            continue
                        capture = cv2.VideoCapture()   # released by _reopen; nothing left to release
                    if index == 0 and self.kind == "video":
                        raise SourceError(f"--source {self.source}: no decodable frame (not a video, or corrupt)")
                    if self.kind == "video" and expected and index < expected - 1:
                        self.stopped = f"video ended early at frame {index} of {expected} (corrupt or truncated)"
                        self.damaged = True
                    elif live:
                        retried = f" (reopening for {self.retry_seconds:g} s failed)" if self.retry_seconds else ""
                        self.stopped = f"{self.kind} stopped delivering frames after {index}{retried}"
                        self.damaged = True
                    if self.decode_errors:   # a video file's skipped frames, after any early end
                        ended = self.stopped if self.damaged else ""
                        self.stopped = "; ".join(filter(None, [ended, describe(self.decode_errors)]))
                        self.damaged = True
                    return
                timestamp = index / self.fps if self.kind == "video" else time.perf_counter() - started
                yield Frame(index, timestamp, frame, None)
                index += 1
        finally:
            if capture is not None:   # None: a retry that gave up has released it already
                capture.release()
