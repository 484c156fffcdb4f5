"""Data-parallel training: two XLA host devices on the JAX backend give the one-device run's numbers; the
TensorFlow backend refuses more than one device with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from edgefer.cli import app


def test_two_devices_match_one_device_with_the_same_global_batch(fer_csv, tmp_path):
    pytest.importorskip("jax")
    script = textwrap.dedent(f"""
        import os, sys
        sys.modules["tensorflow"] = None            # the GPU machine's setting: JAX, no TensorFlow
        os.environ["KERAS_BACKEND"] = "jax"
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        from edgefer.train import config_from_recipe, train
        for devices in ("2", "1"):
            config = config_from_recipe("quick", model="cnn", width=0.25, data={str(fer_csv)!r}, limit=256,
                                        epochs=2, batch_size=64, project={str(tmp_path)!r}, name="d" + devices,
                                        devices=devices)
            train(config, verbose=0, log=print)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data parallel on 2 device(s) (cpu:0, cpu:1): global batch 64 (32 per device)" in done.stdout
    two, one = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("d2", "d1"))
    assert two["distribution"]["devices"] == 2 and two["distribution"]["global_batch_size"] == 64
    assert one["distribution"]["devices"] == 1 and two["keras_backend"] == "jax"
    histories = [(tmp_path / name / "history.csv").read_text().splitlines()[1:] for name in ("d2", "d1")]
    for row_two, row_one in zip(*histories):   # the same steps on the same global batches
        loss_two, loss_one = float(row_two.split(",")[2]), float(row_one.split(",")[2])
        assert loss_two == pytest.approx(loss_one, rel=1e-3)
    assert two["splits"]["PublicTest"]["loss"] == pytest.approx(one["splits"]["PublicTest"]["loss"], rel=1e-3)


def test_tensorflow_refuses_more_than_one_device(fer_csv, tmp_path):
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        pytest.skip("this suite runs on the TensorFlow backend")
    result = CliRunner().invoke(app, ["train", "--data", str(fer_csv), "--devices", "2", "--project", str(tmp_path)])
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: --devices 2: multi-device training needs the JAX backend")
    assert "MirroredStrategy" in line and not any(tmp_path.iterdir())
    bad = CliRunner().invoke(app, ["train", "--data", str(fer_csv), "--devices", "many"])
    assert bad.exit_code == 2 and "--devices 'many': expected a number of devices >= 1, or 'all'" in bad.output


def test_two_processes_share_one_job_each_feeding_its_half_and_only_process_0_writes(fer_csv, tmp_path):
    """`edgefer train --coordinator HOST:PORT --num-processes 2 --process-id K` on two local processes (one CPU
    device each, gradients over Gloo): each process feeds its half of every global batch, so without
    augmentation the job's losses are the one-process run's with the same global batch; process 1 writes no run
    directory of its own."""
    pytest.importorskip("jax")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    common = ["-m", "edgefer", "train", "--data", str(fer_csv), "--recipe", "quick", "--model", "cnn",
              "--width", "0.25", "--limit", "256", "--epochs", "2", "--batch-size", "64", "--quiet"]
    env = dict(os.environ, KERAS_BACKEND="jax")
    jobs = [subprocess.Popen([sys.executable, *common, "--devices", "all", "--coordinator", f"127.0.0.1:{port}",
                              "--num-processes", "2", "--process-id", str(k), "--project", str(tmp_path / f"p{k}"),
                              "--name", "job"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for k in (0, 1)]
    outputs = [job.communicate(timeout=600) for job in jobs]
    for job, (_, stderr) in zip(jobs, outputs):
        assert job.returncode == 0, stderr[-3000:]
    assert "global batch 64 (32 per device)" in outputs[0][0] and "process 1: training" in outputs[1][0]
    assert not (tmp_path / "p1").exists() and "model to export" not in outputs[1][0]
    single = subprocess.run([sys.executable, *common, "--project", str(tmp_path / "one"), "--name", "job"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    job, one = (json.loads((tmp_path / name / "job" / "metrics.json").read_text()) for name in ("p0", "one"))
    assert job["distribution"]["processes"] == 2 and job["distribution"]["devices"] == 2
    histories = [(tmp_path / name / "job" / "history.csv").read_text().splitlines()[1:] for name in ("p0", "one")]
    assert len(histories[0]) == len(histories[1]) == 2
    for row_job, row_one in zip(*histories):   # the same steps on the same global batches
        assert float(row_job.split(",")[2]) == pytest.approx(float(row_one.split(",")[2]), rel=1e-3)
    assert job["splits"]["PublicTest"]["loss"] == pytest.approx(one["splits"]["PublicTest"]["loss"], rel=1e-3)

    # --resume a multi-host run: each process names itself again, reads the run directory process 0 wrote (a
    # shared folder here) and continues from its checkpoint; process 0 alone writes. A third epoch matches the
    # one-process run resumed the same way.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = tmp_path / "p0" / "job"
    resumed = [subprocess.Popen([sys.executable, "-m", "edgefer", "train", "--resume", str(run), "--epochs", "3",
                                 "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(k),
                                 "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for k in (0, 1)]
    outputs = [job.communicate(timeout=600) for job in resumed]
    for job, (_, stderr) in zip(resumed, outputs):
        assert job.returncode == 0, stderr[-3000:]
    assert f"process 1: resuming from {run}" in outputs[1][0] and "resumed" in outputs[0][0]
    single = subprocess.run([sys.executable, "-m", "edgefer", "train", "--resume", str(tmp_path / "one" / "job"),
                             "--epochs", "3", "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    histories = [(tmp_path / name / "job" / "history.csv").read_text().splitlines()[1:] for name in ("p0", "one")]
    assert len(histories[0]) == len(histories[1]) == 3   # one writer: no epoch recorded twice
    assert float(histories[0][2].split(",")[2]) == pytest.approx(float(histories[1][2].split(",")[2]), rel=1e-3)
