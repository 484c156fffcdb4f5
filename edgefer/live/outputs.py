"""Outputs of the loop: the annotated frame, a window, a saved video or images, JSON Lines.

Service rules: the JSON Lines file is appended (a restart or reboot never empties it) and optionally
rotated by size; it is opened only once the first frame has been read, so a source that fails leaves an
existing file untouched. No output may name an input, and a saved video is never written over an
existing file. Outputs are closed (the video finalised, so it plays) whatever ends the loop.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2

from edgefer.errors import EdgeferError
from edgefer.detect.crop import square_around
from edgefer.files import check_writable_folder
from edgefer.live.config import Frame, RunConfig
from edgefer.live.sources import FrameSource, SourceError

ROTATIONS_KEPT = 5
# .mkv (Matroska) and .avi still play after a power cut (measured: kill -9 mid-recording leaves every frame but
# the last few readable); an .mp4 is playable only once closed (its index, the moov atom, is written last)
VIDEO_CODECS = {".mp4": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


def gui_available() -> bool:
    """OpenCV built with a GUI backend (the headless wheel has none) and a display to open."""
    info = cv2.getBuildInformation()
    gui_line = next((line for line in info.splitlines() if line.strip().startswith("GUI:")), "GUI: NONE")
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.name == "nt"
    return "NONE" not in gui_line and has_display


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_outputs(config: RunConfig, source: FrameSource) -> None:
    """Refuse outputs that would overwrite an input or an earlier recording, before anything is opened."""
    inputs = source.input_paths()
    for option, value in (("--save", config.save), ("--json", config.json_path)):
        if not value or (option == "--json" and value == "-"):
            continue
        path = Path(value)
        if any(_same_file(path, p) for p in inputs):
            raise EdgeferError(f"{option} {value}: is an input of --source; expected a new file name")
        if path.exists() and path.is_dir() and option == "--json":
            raise IsADirectoryError(f"--json {value}: is a folder; expected a .jsonl file")
    if config.save and _saves_video(config, source):
        path = Path(config.save)
        if path.suffix.lower() not in VIDEO_CODECS:
            raise EdgeferError(f"--save {config.save}: expected a .mkv, .mp4 or .avi video, or a folder for images")
    elif config.save:
        _check_output_folder(config.save, "--save", "annotated images", source)
    if config.save_crops:
        _check_output_folder(config.save_crops, "--save-crops", "face crops", source)
    for value, option in ((config.save, "--save"), (config.json_path, "--json"), (config.save_crops, "--save-crops")):
        if value and value != "-":
            _check_writable(Path(value), option)


def _check_output_folder(value: str, option: str, what: str, source: FrameSource) -> None:
    folder = Path(value)
    if folder.is_file():
        raise NotADirectoryError(f"{option} {value}: is a file; expected a folder for {what}")
    if source.kind == "folder" and _same_file(folder, Path(source.source)):
        raise EdgeferError(f"{option} {value}: is the --source folder; expected another folder")


def _check_writable(path: Path, option: str) -> None:
    """An output file (appended to when it exists) or folder, or the folder it will be made in."""
    if path.is_file():
        if not os.access(path, os.W_OK):
            raise PermissionError(f"{option} {path}: is not writable (permission denied)")
        return
    check_writable_folder(path if path.is_dir() else path.parent, option)


def _saves_video(config: RunConfig, source: FrameSource) -> bool:
    return bool(config.save) and source.kind not in ("image", "folder") and bool(Path(config.save).suffix)


def _unused(path: Path) -> Path:
    """`path`, or path_2, path_3 ... when taken."""
    candidate, k = path, 1
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.stem}_{k}{path.suffix}")
    return candidate


class JsonLines:
    """An appended JSON Lines file, flushed every line, rotated past `rotate_mb` (file.1 is the newest)."""

    def __init__(self, path: str, rotate_mb: float = 0.0):
        self.stdout = str(path) == "-"   # `--json -`: standard output, never rotated
        self.path, self.limit = Path(path), 0 if self.stdout else int(rotate_mb * 1e6)
        self.handle = None

    def write(self, record: dict) -> None:
        if self.handle is None:
            if self.stdout:
                self.handle = sys.stdout
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                repair_torn_tail(self.path)
                self.handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()
        if self.limit and self.handle.tell() >= self.limit:
            self.rotate()

    def rotate(self) -> None:
        self.close()
        for k in range(ROTATIONS_KEPT - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{k}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{k + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def close(self) -> None:
        if self.handle is not None:
            if not self.stdout:
                self.handle.close()
            self.handle = None


def repair_torn_tail(path: Path) -> int:
    """A file whose last line was cut (a power cut mid-write) ends without a newline: move that partial line
    to `<file>.torn` and truncate it away, so appended records start on a line of their own and every line
    parses. Returns the bytes moved."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with open(path, "rb+") as handle:
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return 0
        tail_start = max(0, size - (1 << 20))
        handle.seek(tail_start)
        tail = handle.read()
        cut = tail_start + tail.rfind(b"\n") + 1 if b"\n" in tail else tail_start
        handle.seek(cut)
        torn = handle.read()
        with open(path.with_name(path.name + ".torn"), "ab") as keep:
            keep.write(torn + b"\n")
        handle.truncate(cut)
    return len(torn)


class Outputs:
    """Saved video/images and JSON Lines; closed properly whatever happens (use as a context manager)."""

    def __init__(self, config: RunConfig, source: FrameSource):
        check_outputs(config, source)
        self.config, self.source = config, source
        self.writer, self.video_path = None, None
        self.json = JsonLines(config.json_path, config.rotate_mb) if config.json_path else None
        self.show = config.show and gui_available()
        self.save_dir = Path(config.save) if config.save and not _saves_video(config, source) else None

    def write(self, frame: Frame, record: dict, annotated) -> None:
        if self.json:
            self.json.write(record)
        if self.config.save_crops and record["faces"]:
            self._write_crops(frame, record["faces"])
        if annotated is None:
            return
        if self.save_dir is not None:
            name = Path(frame.file).with_suffix(".jpg") if frame.file else Path(f"frame_{frame.index:06d}.jpg")
            target = _unused(self.save_dir / name)   # an earlier run's image is never written over
            target.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), annotated):
                raise SourceError(f"--save {self.save_dir}: cannot write {target}")
        elif self.config.save:
            if self.writer is None:
                self._open_video(annotated.shape[1], annotated.shape[0])
            self.writer.write(annotated)
        if self.show:
            cv2.imshow("edgefer", annotated)
            if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                raise KeyboardInterrupt

    def _write_crops(self, frame: Frame, faces: list[dict]) -> None:
        folder = Path(self.config.save_crops)
        stem = Path(frame.file).with_suffix("") if frame.file else Path(f"frame_{frame.index:06d}")
        height, width = frame.image.shape[:2]
        for face in faces:
            x0, y0, side = square_around(face["box"], self.config.margin)   # the classifier's square, in colour
            crop = frame.image[max(0, y0):min(height, y0 + side), max(0, x0):min(width, x0 + side)]
            if crop.size == 0:
                continue
            target = _unused(folder / f"{stem}_face{face['id']}.jpg")
            target.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), crop):
                raise SourceError(f"--save-crops {folder}: cannot write {target}")

    def _open_video(self, width: int, height: int) -> None:
        # one rule with saved photos: an earlier recording is never written over; the new one is numbered
        path = self.video_path = _unused(Path(self.config.save))
        path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[path.suffix.lower()])
        self.writer = cv2.VideoWriter(str(path), fourcc, self.source.fps, (width, height))
        if not self.writer.isOpened():
            self.writer = None
            raise SourceError(f"--save {path}: OpenCV cannot write a {path.suffix} video here")

    @property
    def needs_drawing(self) -> bool:
        return bool(self.config.save or self.show)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.writer is not None:
            self.writer.release()   # writes the mp4's index (moov atom): the file plays
        if self.json:
            self.json.close()
        if self.show:
            cv2.destroyAllWindows()
        return False
