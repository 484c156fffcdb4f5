"""Hardware occupation of a child process, sampled with psutil at a fixed interval.

Definitions (also printed with every profile):
  cpu_pct        the process's CPU time (user + system) over wall time, as a share of the whole machine
                 (100 = every core busy)
  cpu_pct_core   the same per core (100 = one core busy; 200 = two cores)
  user_pct / sys_pct            the process's user / system CPU time as a share of the machine
  sys_user_pct / sys_sys_pct    system-wide user / system CPU shares (all processes), for comparison
  mem_pct        the process's resident set size over total memory
  rss_mb         resident set size in MB (1e6 bytes)
Exact CPU totals for the whole run come from the kernel's rusage of the ended child (os.wait4), so a
short stage that falls between two samples is still counted. Peak RSS comes from the child's own
high-water mark (VmHWM in /proc/<pid>/status, read at every sample): rusage's ru_maxrss cannot be used,
because Linux carries the parent's high-water mark into a forked child across exec.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field

import psutil

from edgefer.errors import EdgeferError
from edgefer.machine import high_water_mark

FIELDS = ("t", "cpu_pct", "cpu_pct_core", "user_pct", "sys_pct", "sys_user_pct", "sys_sys_pct", "mem_pct", "rss_mb")


@dataclass
class Sample:
    t: float
    cpu_pct: float
    cpu_pct_core: float
    user_pct: float
    sys_pct: float
    sys_user_pct: float
    sys_sys_pct: float
    mem_pct: float
    rss_mb: float


@dataclass
class StageMeasurement:
    """One sampled child run: its samples, exact totals and the sampler's own cost."""

    command: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    samples: list[Sample] = field(default_factory=list)
    sampler_cpu_s: float = 0.0
    interval_s: float = 0.5
    output_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def cores(self) -> int:
        return psutil.cpu_count() or 1

    def summary(self) -> dict:
        """Mean and peak of each sampled series, plus exact totals from rusage."""
        result = {
            "returncode": self.returncode, "wall_s": round(self.wall_s, 3),
            "user_s": round(self.user_s, 3), "sys_s": round(self.sys_s, 3),
            "cpu_pct_total": round(100 * (self.user_s + self.sys_s) / max(self.wall_s, 1e-9) / self.cores, 2),
            "cpu_pct_core_total": round(100 * (self.user_s + self.sys_s) / max(self.wall_s, 1e-9), 2),
            "user_pct_total": round(100 * self.user_s / max(self.wall_s, 1e-9) / self.cores, 2),
            "sys_pct_total": round(100 * self.sys_s / max(self.wall_s, 1e-9) / self.cores, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "mem_pct_peak": round(100 * self.peak_rss_mb * 1e6 / psutil.virtual_memory().total, 3),
            "samples": len(self.samples), "interval_s": self.interval_s,
            "sampler_overhead_pct_core": round(100 * self.sampler_cpu_s / max(self.wall_s, 1e-9), 3),
        }
        for name in FIELDS[1:]:
            values = [getattr(s, name) for s in self.samples]
            result[f"{name}_mean"] = round(sum(values) / len(values), 2) if values else None
            result[f"{name}_peak"] = round(max(values), 2) if values else None
        return result

    def samples_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(asdict(s) for s in self.samples)
        return buffer.getvalue()


class ProcessSampler(threading.Thread):
    """Samples one process every `interval` seconds until it ends or stop() is called."""

    def __init__(self, pid: int, interval: float = 0.5):
        if interval <= 0:
            raise EdgeferError(f"sampling interval must be positive, got {interval}")
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[Sample] = []
        self.cpu_seconds = 0.0
        self.peak_rss = 0
        self._halt = threading.Event()
        self._cores = psutil.cpu_count() or 1
        self._total_memory = psutil.virtual_memory().total

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        start_cpu = time.thread_time()
        started = time.perf_counter()
        try:
            last = self.process.cpu_times()
            psutil.cpu_times_percent(interval=None)  # prime the system-wide counters
            last_t = time.perf_counter()
            while not self._halt.wait(self.interval):
                with self.process.oneshot():
                    times = self.process.cpu_times()
                    rss = self.process.memory_info().rss
                self.peak_rss = max(self.peak_rss, rss, high_water_mark(self.process.pid))
                now = time.perf_counter()
                system = psutil.cpu_times_percent(interval=None)
                elapsed = max(now - last_t, 1e-9)
                user, sys_ = times.user - last.user, times.system - last.system
                self.samples.append(Sample(
                    t=round(now - started, 3),
                    cpu_pct=100 * (user + sys_) / elapsed / self._cores,
                    cpu_pct_core=100 * (user + sys_) / elapsed,
                    user_pct=100 * user / elapsed / self._cores,
                    sys_pct=100 * sys_ / elapsed / self._cores,
                    sys_user_pct=system.user, sys_sys_pct=system.system,
                    mem_pct=100 * rss / self._total_memory, rss_mb=rss / 1e6,
                ))
                last, last_t = times, now
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            pass  # the child ended (or crashed): keep the samples so far
        finally:
            self.cpu_seconds = time.thread_time() - start_cpu


def measure_command(command: list[str], interval: float = 0.5, env: dict | None = None,
                    timeout: float | None = None, cwd: str | None = None) -> StageMeasurement:
    """Run `command` as a child, sample it, and return its measurement (also when it fails or crashes)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    sampler = ProcessSampler(child.pid, interval)
    sampler.start()
    output = _drain(child, timeout)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop()
    sampler.join()
    return StageMeasurement(
        command=list(command), returncode=child.returncode, wall_s=wall,
        user_s=usage.ru_utime, sys_s=usage.ru_stime,
        peak_rss_mb=sampler.peak_rss / 1e6,
        samples=sampler.samples, sampler_cpu_s=sampler.cpu_seconds, interval_s=interval,
        output_tail=output[-4000:],
    )


def _drain(child: subprocess.Popen, timeout: float | None) -> str:
    """Read the child's output while it runs (so a chatty child never blocks on a full pipe)."""
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: child.stdout.read(4096), b"")), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        child.kill()
        reader.join()
    return b"".join(chunks).decode("utf-8", "replace")
