"""`edgefer bulk`: expressions for whole archives of images and videos, on Ray Data.

The job is planned on the driver (sources expanded, videos split into frame ranges), the tasks not done yet
go to a Ray Data pipeline whose actor pool holds one detector and classifier per worker
(`map_batches(TaskProcessor, compute=ActorPoolStrategy(...))`), and the reports are rebuilt from what is on
disk. On one machine a local Ray instance gets the machine's cores; `address` ("auto", "ray://HOST:10001",
or RAY_ADDRESS) runs the same job on an existing cluster, whose nodes must have edgefer installed.

Trap (measured on a 2-CPU machine): actors that reserve every CPU starve Ray Data's own tasks and the job
hangs; each actor here reserves a fraction, leaving room for one more.

Output (DIR):
    faces/<file id>/part-<start>.parquet   one row per face (the Parquet dataset: pyarrow.dataset("DIR/faces"))
    tasks/<file id>/part-<start>.json      that task's record (frames, faces, seconds, status, node)
    files.parquet, summary.csv             one row per file
    manifest.json                          the options the results were made with, and every file
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import warnings
from pathlib import Path

from edgefer.bulk.config import BulkConfig
from edgefer.bulk.reaper import Reaper
from edgefer.bulk.sources import expand_sources, plan
from edgefer.bulk.worker import TaskProcessor, part_paths, task_done
from edgefer.errors import EdgeferError
from edgefer.files import atomic_path, check_writable_folder, read_json, write_json, write_text
from edgefer.labels import CLASS_NAMES
from edgefer.tfenv import verbose

RESULT_OPTIONS = ("stride", "max_fps", "model", "detector", "min_face_size", "score_threshold", "nms_threshold",
                  "margin", "tta", "tta_shift", "chunk_frames")


def run_bulk(config: BulkConfig, log=print, on_task=None) -> dict:
    """Process every file the sources name; returns the report (files, totals). `on_task(record)` hears each
    finished task (for a progress bar)."""
    config.validate()
    out = Path(config.out)
    check_writable_folder(out, "--out")
    files = expand_sources(config.sources)
    if not files:
        raise EdgeferError(f"SOURCES {' '.join(config.sources)}: no image or video found")
    if config.model:
        from edgefer.runtime import load_classifier

        load_classifier(config.model)   # a bad --model fails here, not in every worker
    earlier = _check_manifest(out, config)
    tasks, failed = plan(files, config.chunk_frames)
    # files of earlier runs into this --out that this run does not name stay in the reports, as faces/ keeps
    # their rows: the reports always describe everything in the folder
    named = set(files)
    kept = [name for name in earlier.get("files", []) if name not in named]
    kept_set = set(kept)
    kept_tasks = [t for t in earlier.get("tasks", []) if t["file"] in kept_set]
    kept_failed = [f for f in earlier.get("failed", []) if f["file"] in kept_set]
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "manifest.json", {"options": {k: getattr(config, k) for k in RESULT_OPTIONS},
                                       "sources": config.sources, "files": kept + files,
                                       "tasks": kept_tasks + tasks, "failed": kept_failed + failed})
    todo = [task for task in tasks if not task_done(out, task)]
    log(f"{len(files)} file(s) in {len(tasks)} task(s): {len(tasks) - len(todo)} done already, {len(todo)} to run"
        + (f", {len(failed)} unreadable" if failed else "")
        + (f"; the reports also keep {len(kept)} file(s) of earlier runs into {out}" if kept else ""))
    if todo:
        _run_on_ray(config, todo, log, on_task)
    return write_reports(out, kept + files, kept_tasks + tasks, kept_failed + failed)


def _check_manifest(out: Path, config: BulkConfig) -> dict:
    """The earlier run's manifest ({} for a new --out), after checking it was made with the same options."""
    manifest = out / "manifest.json"
    if not manifest.is_file():
        return {}
    earlier = read_json(manifest)
    stored = earlier.get("options", {})
    wanted = {k: getattr(config, k) for k in RESULT_OPTIONS}
    changed = [k for k in RESULT_OPTIONS if k in stored and stored[k] != wanted[k]]
    if changed:
        options = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise EdgeferError(f"--out {out}: holds results made with other options ({options}); "
                         "expected the same options to resume, or a new --out")
    return earlier


def _run_on_ray(config: BulkConfig, todo: list[dict], log, on_task) -> None:
    import ray

    address = config.address or os.environ.get("RAY_ADDRESS") or None
    loud = verbose()
    started_here = not ray.is_initialized()
    # a local instance is this process's to clean up, even if it is killed (reaper.py)
    with Reaper() if started_here and not address else contextlib.nullcontext(), _raylet_lines(shown=loud):
        if started_here:
            ray.init(address=address, num_cpus=None if address else os.cpu_count(), include_dashboard=False,
                     log_to_driver=loud, logging_level=logging.INFO if loud else logging.ERROR,
                     configure_logging=True)
        try:
            _pipeline(ray, config, todo, address, loud, log, on_task)
        finally:
            if started_here:
                ray.shutdown()


@contextlib.contextmanager
def _raylet_lines(shown: bool):
    """Ray's driver prints the errors its cluster publishes, coloured "(raylet) ..." lines, even with
    log_to_driver off (e.g. "Task MapWorker ... failed ... killed by `ray.kill`" after Ctrl-C). They are Ray's
    chatter: shown with -v only, by the switch Ray's own debugger uses (ray.util.rpdb)."""
    from ray._private import worker

    before = getattr(worker, "_worker_logs_enabled", None)
    if before is None or shown:
        yield
        return
    worker._worker_logs_enabled = False
    try:
        yield
    finally:
        worker._worker_logs_enabled = before


def _pipeline(ray, config: BulkConfig, todo: list[dict], address, loud: bool, log, on_task) -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = loud
    context.print_on_execution_start = loud
    if not loud:
        for name in ("ray", "ray.data", "ray.data._internal"):
            logging.getLogger(name).setLevel(logging.ERROR)
    cpus = max(1.0, float(ray.cluster_resources().get("CPU", 1)))
    workers = min(config.workers or max(1, int(cpus)), len(todo))   # an actor per task at most
    per_actor = min(1.0, cpus / (workers + 1))   # fractional: leave a CPU's worth for Ray Data's own tasks
    log(f"ray: {len(ray.nodes())} node(s), {cpus:g} CPU(s); {workers} worker(s) at {per_actor:.2f} CPU each"
        + (f" on {address}" if address else " (local)"))
    dataset = ray.data.from_items(todo, override_num_blocks=len(todo))
    with warnings.catch_warnings():   # Ray 2.60 flags ray_remote_args_fn for removal; no named SPREAD yet
        warnings.simplefilter("default" if loud else "ignore")
        results = dataset.map_batches(
            TaskProcessor, fn_constructor_kwargs={"config": config}, batch_size=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=per_actor,
            ray_remote_args_fn=lambda: {"scheduling_strategy": "SPREAD"})   # workers over every node
    for record in results.iter_rows():
        if on_task:
            on_task(record)


def write_reports(out: Path, files: list[str], tasks: list[dict], failed: list[dict]) -> dict:
    """files.parquet and summary.csv from the task records on disk (whatever run wrote them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records: dict[str, list[dict]] = {}
    for task in tasks:
        record_path = part_paths(out, task)[1]
        if record_path.is_file():
            records.setdefault(task["file"], []).append(read_json(record_path))
    expected = {}
    for task in tasks:
        expected[task["file"]] = expected.get(task["file"], 0) + 1
    errors = {f["file"]: f["status"] for f in failed}
    rows = []
    for name in files:
        done = records.get(name, [])
        counts: dict[str, int] = {}
        for record in done:
            for emotion, count in json.loads(record["emotions"]).items():
                counts[emotion] = counts.get(emotion, 0) + count
        faces = sum(r["faces"] for r in done)
        bad = next((r["status"] for r in done if r["status"] != "ok"), None)
        if name in errors:
            status = errors[name]
        elif len(done) < expected.get(name, 0):
            status = f"incomplete: {len(done)} of {expected[name]} part(s) done"
        else:
            status = bad or "ok"
        rows.append({"file": name, "frames": sum(r["frames"] for r in done), "faces": faces,
                     "seconds": round(sum(r["seconds"] for r in done), 3),
                     **{f"share_{c}": round(counts.get(c, 0) / faces, 4) if faces else 0.0 for c in CLASS_NAMES},
                     "dominant": max(counts, key=counts.get) if counts else None, "status": status})
    table = pa.Table.from_pylist(rows)
    with atomic_path(out / "files.parquet") as temp:
        pq.write_table(table, temp)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "summary.csv", buffer.getvalue())
    totals = {"files": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
              "frames": sum(r["frames"] for r in rows), "faces": sum(r["faces"] for r in rows),
              "seconds": round(sum(r["seconds"] for r in rows), 3)}
    return {"files": rows, "totals": totals}


