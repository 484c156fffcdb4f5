"""One bulk worker: the detector and classifier loaded once, then task after task (a photo, or a frame range of
a video) turned into face rows. Each task's rows land atomically in `<out>/faces/<file id>/part-<start>.parquet`
and then its record in `<out>/tasks/<file id>/part-<start>.json`, so a task is either complete or redone,
never half-kept or duplicated (and faces/ stays a pure Parquet dataset).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgefer.bulk.config import FACE_COLUMNS, PROBABILITY_COLUMNS, BulkConfig
from edgefer.errors import EdgeferError
from edgefer.files import atomic_path, write_json
from edgefer.media import load_image
from edgefer.pipeline import FacePipeline
from edgefer.runtime import DEFAULT_MODEL
from edgefer.video import CheckedVideo, describe


def part_paths(out: Path, task: dict) -> tuple[Path, Path]:
    name = f"part-{int(task['start']):09d}"
    return (Path(out) / "faces" / task["file_id"] / f"{name}.parquet",
            Path(out) / "tasks" / task["file_id"] / f"{name}.json")


def task_done(out: Path, task: dict) -> bool:
    parquet, record = part_paths(out, task)
    return parquet.is_file() and record.is_file()


class TaskProcessor:
    """Callable on a batch of tasks (Ray Data's map_batches with an actor pool, or directly)."""

    def __init__(self, config: BulkConfig):
        self.config = config
        self.model_path = config.model or str(DEFAULT_MODEL)
        # no tracking: a task's frames are a sample of a video, and ids would differ by how it was split
        self.pipeline = FacePipeline.from_options(config, track=False)
        self.node = _node_id()

    def __call__(self, batch: dict) -> dict:
        tasks = [dict(zip(batch, values)) for values in zip(*batch.values())]
        records = [self.process(task) for task in tasks]
        return {key: np.asarray([r[key] for r in records], dtype=object) for key in records[0]}

    def process(self, task: dict) -> dict:
        started, started_at = time.perf_counter(), time.time()
        rows, frames, status = [], 0, "ok"
        self.stopped_at, self.decode_errors = None, {}
        try:
            for index, timestamp, image in self._frames(task):
                frames += 1
                rows += self._faces(task["file"], index, timestamp, image)
        except (OSError, ValueError, cv2.error) as error:
            status = f"error: {' '.join(str(error).split())[:200]}"
        if status == "ok" and task["kind"] == "video" and frames == 0:
            status = "error: no decodable frame in this range (corrupt or truncated)"
        elif status == "ok" and self.stopped_at is not None:   # as `edgefer run` says of the same file
            status = (f"error: video ended early at frame {self.stopped_at} of {task['frame_count']} "
                      f"(corrupt or truncated)")
        if self.decode_errors:   # the same words as `edgefer run`
            status = f"{status}; {describe(self.decode_errors)}" if status != "ok" else \
                f"error: {describe(self.decode_errors)}"
        record = {"file": task["file"], "file_id": task["file_id"], "start": int(task["start"]),
                  "end": int(task["end"]), "frames": frames, "faces": len(rows),
                  "seconds": round(time.perf_counter() - started, 3), "started_at": round(started_at, 3),
                  "finished_at": round(time.time(), 3), "status": status, "node": self.node,
                  "pid": os.getpid(), "emotions": json.dumps(_count(rows))}
        self._write(task, rows, record)
        return record

    def _frames(self, task: dict):
        """(index, timestamp or None, BGR image) of the frames this task keeps."""
        name = task["file"]
        if task["kind"] == "image":
            with _local(name) as path:
                image, why = load_image(path)
            if image is None:
                raise EdgeferError(why)
            yield 0, None, image
            return
        with _local(name) as path:
            capture = CheckedVideo(path)
            try:
                if not capture.isOpened():
                    raise EdgeferError("not a video OpenCV can decode")
                fps, end, count = float(task["fps"]), int(task["end"]), int(task["frame_count"])
                if fps <= 0:   # a URI is planned unopened: its rate and length are known only now
                    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
                    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
                    end = count or 1 << 30
                    task["frame_count"] = count
                step = self.config.step(fps)
                start = int(task["start"])
                if start:
                    capture.seek(start)
                for index in range(start, end):
                    if index % step:
                        (ok, errors), image = capture.grab(), None
                    else:
                        ok, image, errors = capture.read()
                    if ok and errors:   # FFmpeg's concealed garbage: no faces from it
                        self.decode_errors[index] = errors
                        continue
                    if not ok:
                        # a container may promise one frame more than it holds (`edgefer run` allows it too)
                        if count and index < count - 1:
                            self.stopped_at = index
                        break
                    if image is not None:
                        yield index, index / fps, image
            finally:
                capture.release()

    def _faces(self, file: str, index: int, timestamp, image) -> list[dict]:
        timestamp = None if timestamp is None else round(timestamp, 4)
        return [face.as_row(file=file, frame=index, timestamp_s=timestamp, model=Path(self.model_path).name,
                            detector=self.config.detector)
                for face in self.pipeline.faces(image)]

    def _write(self, task: dict, rows: list[dict], record: dict) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parquet, json_path = part_paths(Path(self.config.out), task)
        table = pa.Table.from_pylist(rows, schema=face_schema())
        with atomic_path(parquet) as temp:
            pq.write_table(table, temp)
        write_json(json_path, record)   # written last: its presence marks the task complete


def face_schema():
    import pyarrow as pa

    types = {"file": pa.string(), "frame": pa.int64(), "timestamp_s": pa.float64(), "x": pa.int32(),
             "y": pa.int32(), "w": pa.int32(), "h": pa.int32(), "score": pa.float32(), "emotion": pa.string(),
             "model": pa.string(), "detector": pa.string(), **{c: pa.float32() for c in PROBABILITY_COLUMNS}}
    return pa.schema([(name, types[name]) for name in FACE_COLUMNS])


def _count(rows: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["emotion"]] = counts.get(row["emotion"], 0) + 1
    return counts


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    except ImportError:
        return "local"


class _local:
    """A local path for a file or a URI that pyarrow's filesystems read (s3://, gs://, hdfs:// ...)."""

    def __init__(self, name: str):
        self.name, self.temp = name, None

    def __enter__(self) -> str:
        if "://" not in self.name or self.name.startswith("file://"):
            return self.name[len("file://"):] if self.name.startswith("file://") else self.name
        from pyarrow import fs

        filesystem, path = fs.FileSystem.from_uri(self.name)
        handle, self.temp = tempfile.mkstemp(suffix=Path(path).suffix)
        with os.fdopen(handle, "wb") as out, filesystem.open_input_stream(path) as source:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        return self.temp

    def __exit__(self, *exc):
        if self.temp:
            os.unlink(self.temp)
        return False
