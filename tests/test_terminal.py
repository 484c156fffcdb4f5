"""Only edgefer's own lines reach the terminal: TensorFlow's, absl's and LiteRT's C++ start-up chatter is
filtered from the console command (shown with -v), and edgefer's warnings are one line each."""

from __future__ import annotations

import subprocess
import sys

from edgefer.runtime import DEFAULT_KERAS_MODEL
from edgefer.tfenv import NATIVE_CHATTER


def test_the_filter_knows_the_chatter_and_keeps_everything_else():
    chatter = ["I0000 00:00:1796130729.468180   23276 port.cc:153] oneDNN custom operations are on.",
               "E0000 00:00:1796123426.276421    8514 cuda_platform.cc:52] failed call to cuInit: (303)",
               "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
               "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
               "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8",
               "[2026-12-01 11:37:33,722 E 19213 19213] core_worker.cc:2465: Actor with class name"]
    kept = ["error: fer.csv: line 3: pixel 'x' is not an integer", "Traceback (most recent call last):",
            "keras reference: accuracy 0.6400 on 200 PublicTest faces"]
    assert all(NATIVE_CHATTER.match(line) for line in chatter)
    assert not any(NATIVE_CHATTER.match(line) for line in kept)


def test_a_tensorflow_command_prints_only_edgefers_lines(fer_csv, tmp_path):
    done = subprocess.run([sys.executable, "-m", "edgefer", "evaluate", str(DEFAULT_KERAS_MODEL), "--data",
                           str(fer_csv), "--limit", "64", "--project", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.strip() == "", done.stderr[-2000:]   # TensorFlow was imported, and said nothing
    assert "accuracy" in done.stdout and "wrote" in done.stdout
    loud = subprocess.run([sys.executable, "-m", "edgefer", "-v", "evaluate", str(DEFAULT_KERAS_MODEL), "--data",
                           str(fer_csv), "--limit", "64", "--project", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0 and ("oneDNN" in loud.stderr or "cuda" in loud.stderr.lower())
