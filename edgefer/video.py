"""Video files through OpenCV's FFmpeg backend, with FFmpeg's decoding errors caught frame by frame.

When FFmpeg cannot decode a frame, OpenCV still hands back a picture (the concealed garbage) and reports
success; FFmpeg's only signal is a log line on the process's standard error (`[h264 @ 0x55..] error while
decoding MB 0 5, bytestream 3323`) that names no file. A `CheckedVideo` decodes on one thread, so that an error
belongs to the frame being read (720p H.264: 1.08 vs 1.23 ms a frame with FFmpeg's frame threads, within this
machine's noise; profiles/benchmarks/decode_errors.md), and points file descriptor 2 at a scratch file while
it opens, seeks and reads, so that each frame's FFmpeg lines come back with that frame instead of reaching the
terminal unattributed. Anything else written to
standard error in that window (another thread's progress bar) is passed on. Used by `run` and `bulk`; a leaf.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading

import cv2

# FFmpeg's default log callback starts each message with "[<component> @ 0x<address>] "; OpenCV leaves its level
# at AV_LOG_ERROR, so every such line is an error
_FFMPEG_LINE = re.compile(r"^\[[\w:.-]+ @ 0x[0-9a-fA-F]+\] ?")
_LOCK = threading.Lock()   # file descriptor 2 is the process's: one redirection at a time


class CheckedVideo:
    """A video file opened for decoding; `read()` and `grab()` also return the FFmpeg errors of that frame
    (lines without their `[codec @ 0x..]` prefix; empty when it decoded cleanly)."""

    def __init__(self, path: str):
        self._scratch = tempfile.TemporaryFile()
        self._pending: list[str] = []
        self.capture = self._call(cv2.VideoCapture, str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
        if not self.capture.isOpened():   # not FFmpeg's to open (e.g. an image sequence): OpenCV's own choice
            self.capture.release()
            self.capture = self._call(cv2.VideoCapture, str(path))

    def isOpened(self) -> bool:
        return self.capture.isOpened()

    def get(self, prop: int) -> float:
        return self.capture.get(prop)

    def seek(self, frame: int) -> None:
        """Position at `frame`. FFmpeg decodes from the keyframe before it: errors met on the way belong to
        earlier frames (whoever reads those reports them) and are dropped."""
        self._call(self.capture.set, cv2.CAP_PROP_POS_FRAMES, frame)
        self._pending = []

    def read(self):
        """(ok, BGR image or None, errors)."""
        ok, image = self._call(self.capture.read)
        return ok and image is not None, image, self._take()

    def grab(self):
        """(ok, errors): the frame decoded but not converted (a skipped frame of a sample)."""
        return self._call(self.capture.grab), self._take()

    def release(self) -> None:
        self.capture.release()
        self._scratch.close()

    def _take(self) -> list[str]:
        errors, self._pending = self._pending, []
        return errors

    def _call(self, function, *args):
        with _LOCK:
            sys.stderr.flush()
            saved = os.dup(2)
            try:
                os.dup2(self._scratch.fileno(), 2)
                try:
                    return function(*args)
                finally:
                    os.dup2(saved, 2)
            finally:
                os.close(saved)
                self._collect()

    def _collect(self) -> None:
        if os.lseek(self._scratch.fileno(), 0, os.SEEK_CUR) == 0:   # nothing written: the usual, clean frame
            return
        self._scratch.seek(0)
        text = self._scratch.read().decode("utf-8", "replace")
        self._scratch.seek(0)
        self._scratch.truncate()
        others = []
        for line in text.splitlines(keepends=True):
            match = _FFMPEG_LINE.match(line)
            if match:
                self._pending.append(line[match.end():].strip())
            else:
                others.append(line)
        if others:
            os.write(2, "".join(others).encode())


def describe(errors: dict[int, list[str]]) -> str:
    """One phrase for the frames FFmpeg could not decode: how many, which, and its first message."""
    frames = sorted(errors)
    shown = ", ".join(str(f) for f in frames[:5]) + (" ..." if len(frames) > 5 else "")
    return (f"FFmpeg could not decode {len(frames)} frame(s) ({shown}; first error: {errors[frames[0]][0][:80]}); "
            f"they were skipped, and the frames after them may show the damage until the next keyframe")
