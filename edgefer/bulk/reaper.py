"""A watchdog for the local Ray instance a bulk job starts.

When the job's process dies without shutting Ray down (kill -9, an OOM kill, a crash), Ray's raylet and GCS
follow it, but agents started a moment earlier can outlive it: measured here (Ray 2.60, 2 cores), a driver
killed 4 or 8 s into a job left `ray::DashboardAgent` and `ray::RuntimeEnvAgent` (~90 MB each) running, parented
to init (still alive 30 s and 63 s after their start, gone by 75 s and 103 s). The reaper is a separate process in its own session (Ctrl-C in the terminal does not reach
it) that keeps a list of the job's descendants (pid and start time) and, once the job's end of its pipe closes
without a "done", ends those still alive: SIGTERM, then SIGKILL after 3 s.

    with Reaper():
        ray.init(...)
        ...
        ray.shutdown()
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

POLL_SECONDS = 0.5


class Reaper:
    """Starts the watchdog for this process; leaving the block normally tells it all is well."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-m", "edgefer.bulk.reaper", str(os.getpid())],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)

    def __enter__(self) -> "Reaper":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Ray was shut down by its owner: the watchdog leaves the processes alone and exits."""
        try:
            self.process.stdin.write(b"done\n")
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()


def watch(driver_pid: int) -> list[int]:
    """Track `driver_pid`'s descendants until standard input closes; without a "done" first, end those still
    running. Returns the pids it ended."""
    import psutil

    me = os.getpid()
    seen: dict[int, float] = {}
    said: list[bytes] = []
    closed = threading.Event()

    def listen():
        said.append(sys.stdin.buffer.read())   # returns at EOF: the driver closed it, or died
        closed.set()

    threading.Thread(target=listen, daemon=True).start()
    try:
        driver = psutil.Process(driver_pid)
    except psutil.NoSuchProcess:
        return []
    while not closed.wait(POLL_SECONDS):
        try:
            for child in driver.children(recursive=True):
                if child.pid != me:
                    seen.setdefault(child.pid, child.create_time())
        except psutil.Error:
            pass   # the driver is gone: its pipe closes next
    if said and b"done" in said[0]:
        return []
    left = []
    for pid, created in seen.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == created:   # not a new process that reuses the pid
                process.terminate()
                left.append(process)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(left, timeout=3)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    return [p.pid for p in left]


if __name__ == "__main__":
    watch(int(sys.argv[1]))
