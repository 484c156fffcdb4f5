"""What a bulk job reads: SOURCES expanded to files (images, videos, folders recursively, globs, text files
listing paths or URIs), and each file planned as tasks (a photo, or a frame range of a video)."""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path

import cv2

from edgefer.errors import EdgeferError
from edgefer.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from edgefer.video import CheckedVideo

LIST_SUFFIXES = {".txt", ".list", ".lst"}


def file_id(name: str) -> str:
    """A stable folder name for a file's results: its resolved path with its size and modification time for a
    local file (the same file named two ways is one file; a file replaced by another is a new one), the URI
    for a remote one."""
    key = name
    if not is_uri(name):
        try:
            stat = Path(name).stat()
            key = f"{Path(name).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:
            pass
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def is_uri(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


def expand_sources(sources: list[str], _lists: frozenset = frozenset()) -> list[str]:
    """Every image and video the sources name (local files by their resolved path), in a stable order, without
    repeats. A list file that names itself, directly or through other lists, is refused."""
    found: list[str] = []
    for source in sources:
        text = str(source)
        if is_uri(text):
            found.append(text)
            continue
        path = Path(text[len("file://"):] if text.startswith("file://") else text)
        if path.is_dir():
            found += sorted(str(p.resolve()) for p in path.rglob("*")
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            resolved = path.resolve()
            if resolved in _lists:
                raise EdgeferError(f"{path}: this list file names itself (directly or through another list); "
                                   f"expected lists of images, videos, folders or other lists")
            lines = [line.strip() for line in path.read_text().splitlines()]
            found += expand_sources([line for line in lines if line and not line.startswith("#")],
                                    _lists | {resolved})
        elif path.is_file():
            found.append(str(path.resolve()))
        elif any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise FileNotFoundError(f"{text}: the pattern matches no file")
            found += expand_sources(matches, _lists)
        else:
            raise FileNotFoundError(f"{text}: no such file, folder, glob or list file")
    return list(dict.fromkeys(found))


def kind_of(name: str) -> str:
    return "image" if Path(name.split("?")[0]).suffix.lower() in IMAGE_SUFFIXES else "video"


def plan(files: list[str], chunk_frames: int) -> tuple[list[dict], list[dict]]:
    """Tasks for the workers, and the files that cannot be read (with the reason)."""
    tasks, failed = [], []
    for name in files:
        base = {"file": name, "file_id": file_id(name), "kind": kind_of(name)}
        if base["kind"] == "image" or is_uri(name):
            tasks.append({**base, "start": 0, "end": 1, "fps": 0.0, "frame_count": 1})
            continue
        capture = CheckedVideo(name)   # its decoding errors are the workers' to report, per frame
        try:
            if not capture.isOpened():
                failed.append({**base, "status": "error: not a video OpenCV can decode"})
                continue
            fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            capture.release()
        if count <= 0:
            failed.append({**base, "status": "error: no frames (corrupt or empty video)"})
            continue
        for start in range(0, count, chunk_frames):
            tasks.append({**base, "start": start, "end": min(count, start + chunk_frames), "fps": float(fps),
                          "frame_count": count})
    return tasks, failed
