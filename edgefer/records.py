"""Benchmark records: one header (command, date, commit, machine, library versions) and one table writer,
so every file under profiles/ says what produced it and where. A leaf."""

from __future__ import annotations

import importlib.metadata
import shlex
import subprocess
import sys
from pathlib import Path

from edgefer.machine import machine_description

LIBRARIES = ("edgefer", "numpy", "opencv-python-headless", "ai-edge-litert", "onnxruntime", "tensorflow", "mtcnn")


def commit() -> str:
    """The checkout's commit (with '+changes' when the tree differs from it), or 'unknown'."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("+changes" if dirty else "")) if head else "unknown"


def versions(names=LIBRARIES) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def header(title: str, argv: list[str] | None = None) -> str:
    """A record's first lines: title, the command that wrote it, date, commit, machine and versions."""
    argv = sys.argv if argv is None else argv
    machine = machine_description()
    command = "python " + " ".join(shlex.quote(a) for a in argv)
    libraries = ", ".join(f"{k} {v}" for k, v in versions().items())
    return (f"# {title}\n\n"
            f"- command: `{command}`\n"
            f"- date: {machine['date']}; commit: {commit()}\n"
            f"- machine: {machine['processor']}, {machine['cores']} cores, {machine['memory_gb']} GB, "
            f"Python {machine['python']}, {machine['platform']}\n"
            f"- libraries: {libraries}\n")


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown table; `align` is one letter per column (l or r; default: text left, numbers right)."""
    def cell(value) -> str:   # callers round; floats print as they are (61.6, 0.869)
        return str(value)

    if align is None:
        align = "".join("r" if rows and isinstance(rows[0][k], (int, float)) else "l" for k in range(len(headers)))
    lines = ["| " + " | ".join(headers) + " |",
             "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write(path: str | Path, text: str) -> Path:
    """Write a record atomically (a reader never sees half of it)."""
    from edgefer.files import write_text

    write_text(Path(path), text if text.endswith("\n") else text + "\n")
    return Path(path)
