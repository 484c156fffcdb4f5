"""Optuna sweeps over real (tiny) training runs: each sampler, resume after an interruption, bad spaces."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from edgefer.sweep import SweepConfig, SweepError, parse_space, run_sweep
from edgefer.train import config_from_recipe


def _base(fer_csv):
    return config_from_recipe("quick", data=str(fer_csv), limit=128, epochs=1, batch_size=64, model="mini_xception")


@pytest.mark.parametrize("sampler", ["grid", "tpe"])   # random: test_interrupted_sweep_resumes
def test_tiny_sweep_each_sampler(sampler, fer_csv, tmp_path):
    space = parse_space(["lr=log:1e-3:1e-2", "label_smoothing=choice:0.0,0.1", "width=choice:0.5,1.0"])
    report = run_sweep(SweepConfig(_base(fer_csv), space, sampler, trials=2, out=str(tmp_path / sampler),
                                   prune=False, grid_points=2), log=lambda *_: None)
    assert [t["state"] for t in report["trials"]] == ["COMPLETE"] * 2
    for trial in report["trials"]:
        run = json.loads((tmp_path / sampler / "trials" / f"trial{trial['number']}" / "args.json").read_text())
        assert run["lr"] == pytest.approx(trial["params"]["lr"])  # each trial really trained with its values
        assert run["label_smoothing"] == trial["params"]["label_smoothing"]
        metrics = json.loads((tmp_path / sampler / "trials" / f"trial{trial['number']}" / "metrics.json").read_text())
        assert (metrics["parameters"] == 58_423) == (trial["params"]["width"] == 1.0)  # filter widths really swept
        assert 0 < trial["value"] <= 1
    if sampler == "grid":
        combos = {tuple(t["params"].values()) for t in report["trials"]}
        assert len(combos) == 2  # grid points are not repeated
    assert report["best"]["value"] == max(t["value"] for t in report["trials"])
    for name in ("sweep.md", "sweep.json", "sweep.png", "study.db"):
        assert (tmp_path / sampler / name).stat().st_size > 0


def test_interrupted_sweep_resumes(fer_csv, tmp_path):
    config = SweepConfig(_base(fer_csv), parse_space(["lr=log:1e-3:1e-2"]), "random", trials=2,
                         out=str(tmp_path / "study"), prune=True)

    def interrupt_second_trial(message):
        if message.startswith("trial 1:"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(config, log=interrupt_second_trial)
    with pytest.raises(SweepError, match="exists already .*; pass --resume"):
        run_sweep(config, log=lambda *_: None)   # the same command again does not silently join the study
    other = dataclasses.replace(config, resume=True, space=parse_space(["label_smoothing=float:0:0.1"]))
    with pytest.raises(SweepError, match="searched lr=log, not label_smoothing=float"):
        run_sweep(other, log=lambda *_: None)
    messages = []
    report = run_sweep(dataclasses.replace(config, resume=True), log=messages.append)
    assert "1 finished trial(s)" in messages[0] and "running 1 more" in messages[0]
    states = [t["state"] for t in report["trials"]]
    assert states[0] == "COMPLETE" and states[1] == "FAIL" and len(states) == 3
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == 2


def test_bad_search_spaces(tmp_path):
    for entries, message in [
        (["momentum=float:0:0.5"], "'momentum' cannot be swept"),
        (["lr=gauss:0:1"], "unknown kind 'gauss'"),
        (["lr=log:0:1"], "need 0 < LOW < HIGH"),
        (["lr=float:1"], "needs LOW:HIGH"),
        (["batch_size=choice:big"], "'big' is not a valid int"),
        (["lr"], "expected NAME=KIND"),
        ([], "empty search space"),
    ]:
        with pytest.raises(SweepError, match=message):
            parse_space(entries)
    spec = tmp_path / "space.yaml"
    spec.write_text("lr: {log: [0.0001, 0.01]}\nbatch_size: {choice: [32, 64]}\n")
    assert [d.name for d in parse_space(None, str(spec))] == ["lr", "batch_size"]


def test_two_workers_share_a_postgres_study_and_survive_a_killed_worker(fer_csv, postgres_url, tmp_path):
    """`edgefer sweep --workers 2 --storage postgresql://...`: one worker is killed mid-trial; its trial ends
    FAIL (not RUNNING), the sweep still finishes every trial, and no trial is lost or run twice."""
    import optuna
    import psutil

    out = tmp_path / "pgstudy"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "edgefer", "sweep", "--data", str(fer_csv), "--space", "lr=log:1e-3:1e-2",
         "--sampler", "random", "--trials", "4", "--workers", "2", "--storage", postgres_url, "--out", str(out),
         "--recipe", "quick", "--model", "cnn", "--limit", "256", "--epochs", "3", "--no-prune",
         "--heartbeat-seconds", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storage = optuna.storages.RDBStorage(postgres_url)
    deadline, victim = time.time() + 300, None
    while time.time() < deadline and victim is None:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="pgstudy", storage=storage)
        except KeyError:
            continue
        running = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"
                   and t.user_attrs.get("worker_pid") and (out / "trials" / f"trial{t.number}" / "history.csv").exists()]
        if running:
            victim = running[0].user_attrs["worker_pid"]
    assert victim is not None, sweep.communicate(timeout=60)
    assert victim in [p.pid for p in psutil.Process(sweep.pid).children()]
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, stderr[-3000:]
    assert f"worker {victim} died" in stdout
    trials = optuna.load_study(study_name="pgstudy", storage=storage).get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == 4 and states.count("FAIL") == 1 and "RUNNING" not in states
    run_dirs = [t.user_attrs["run_dir"] for t in trials]
    assert len(set(run_dirs)) == len(run_dirs) == len({t.number for t in trials})   # none run twice
    report = json.loads((out / "sweep.json").read_text())
    assert [t["state"] for t in report["trials"]] == states and report["best"]["value"] > 0
