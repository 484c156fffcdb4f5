"""The psutil sampler against children of known shape, and a small end-to-end profile."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from edgefer.cli import app
from edgefer.profile import ProfileConfig, run_profile
from edgefer.profile.sampler import ProcessSampler, measure_command

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 2.5: pass"
ALLOCATE = "import time, numpy as np\na = np.ones(200_000_000 // 8)\ntime.sleep(1.5)"
CRASH = "import os, time\ntime.sleep(1.0)\nos.abort()"


def test_busy_child_reads_about_one_core():
    run = measure_command([sys.executable, "-c", BUSY], interval=0.2)
    summary = run.summary()
    assert run.ok and summary["samples"] >= 8
    # one single-threaded busy loop: ~100 % of one core; the suite's other worker shares the 2 cores (66.5 %
    # seen on a fresh-clone CI run), so the mean is bounded loosely and the peak shows the full core
    assert 50 <= summary["cpu_pct_core_total"] <= 110 and summary["cpu_pct_core_peak"] >= 80, summary
    assert summary["cpu_pct_total"] == pytest.approx(summary["cpu_pct_core_total"] / run.cores, rel=0.01)
    assert summary["user_pct_total"] > 5 * summary["sys_pct_total"]
    assert summary["sampler_overhead_pct_core"] < 5  # the sampler does not distort what it measures


def test_allocation_shows_in_rss():
    baseline = measure_command([sys.executable, "-c", "import numpy, time\ntime.sleep(1)"], interval=0.2)
    run = measure_command([sys.executable, "-c", ALLOCATE], interval=0.2)
    grown = run.summary()["peak_rss_mb"] - baseline.summary()["peak_rss_mb"]
    assert 170 <= grown <= 230, grown  # 200 MB (1e6 bytes), less what the baseline already touched
    assert max(s.rss_mb for s in run.samples) - baseline.peak_rss_mb > 150


def test_crashing_child_is_reported_and_samples_kept():
    run = measure_command([sys.executable, "-c", CRASH], interval=0.2)
    assert run.returncode != 0 and not run.ok
    assert len(run.samples) >= 3


def test_bad_options_are_refused(fer_csv):
    with pytest.raises(ValueError, match="interval must be positive"):
        ProcessSampler(1, interval=0)
    for kwargs, message in [
        (dict(models=["vgg19"]), "unknown model 'vgg19'"),
        (dict(interval=-1), "--interval -1: expected a value >= 0.01"),
        (dict(train_images=8), "smaller than one batch"),
        (dict(devices=["tpu"]), "unknown device 'tpu'"),
    ]:
        config = ProfileConfig(**{"models": ["cnn"], "data": str(fer_csv), **kwargs})
        with pytest.raises(ValueError, match=message):
            config.validate()
    result = CliRunner().invoke(app, ["profile", "--data", str(fer_csv), "--device-epochs", "two"])
    assert result.exit_code == 2 and "expected comma-separated integers" in result.output


def test_small_end_to_end_profile(fer_csv, tmp_path):
    config = ProfileConfig(models=["mini_xception"], data=str(fer_csv), epochs=1, train_images=256,
                           test_images=200, batch_size=32, interval=0.25, out=str(tmp_path), edge=True,
                           devices=["cpu", "gpu"], device_epochs=[1])
    logs = []
    report = run_profile(config, log=logs.append)
    assert not any("{" in line for line in logs), logs   # readable lines, no raw dicts
    edge = report["models"]["mini_xception"]["edge"]["runtimes"]
    assert set(edge) == {"keras", "tflite_float32", "tflite_int8", "onnx"}
    for runtime, row in edge.items():
        assert row["size_kb"] > 20 and row["ms_per_face_1t"] > 0 and row["peak_rss_mb_1t"] > 20, (runtime, row)
    assert edge["tflite_int8"]["size_kb"] < edge["tflite_float32"]["size_kb"] / 2   # int8 weights really shrank
    assert edge["tflite_int8"]["backend"] == "ai_edge_litert" and edge["onnx"]["backend"] == "onnxruntime"
    for name, params in (("mini_xception", 58_423),):
        entry = report["models"][name]
        assert entry["layers"]["parameters"] == params
        for stage in ("train", "test"):
            s = entry["stages"][stage]
            assert s["returncode"] == 0 and s["samples"] >= 2 and s["peak_rss_mb"] > 100
            assert 0 < s["cpu_pct_total"] <= 100
        assert 0 <= entry["test"]["accuracy"] <= 1 and entry["test"]["faces"] == 200
        assert (tmp_path / f"samples_{name}_train.csv").read_text().startswith("t,cpu_pct")
    assert report["devices"][0]["gpu"] in ("no GPU present",) or isinstance(report["devices"][0]["gpu"], dict)
    cpu_row = report["devices"][0]["cpu"]   # 1 epoch on the CPU is the training stage itself, not run twice
    assert cpu_row["ok"] and cpu_row["train_seconds"] > 0 and not (tmp_path / "work" / "mini_xception_cpu_1ep").exists()
    markdown = (tmp_path / "summary.md").read_text()
    assert "Table 4" in markdown and "Table 5" in markdown and "| mini_xception |" in markdown
    assert "| 58,423 | 58,423 |" in markdown   # the paper's column, read from the packaged paper.json
    assert "## For the edge" in markdown and "| mini_xception | tflite_int8 (ai_edge_litert) |" in markdown
    assert json.loads((tmp_path / "summary.json").read_text())["machine"]["cores"] >= 1
    for png in ("params_vs_accuracy.png", "occupation_train.png", "occupation_test.png"):
        assert (tmp_path / png).stat().st_size > 1000
