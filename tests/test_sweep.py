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

from edgefer.sweep import SweepConfig, SweepError, fail_trials_of, parse_space, run_sweep, worker_id
from edgefer.train import config_from_recipe


def _base(fer_csv):
    return config_from_recipe("quick", data=str(fer_csv), limit=128, epochs=1, batch_size=64, model="mini_xception")


def _tiny(fer_csv):
    """For tests of the study's bookkeeping, where the trial only has to finish: the smallest real training."""
    return config_from_recipe("quick", data=str(fer_csv), limit=64, epochs=1, batch_size=32, model="cnn", width=0.25)


@pytest.mark.parametrize("sampler", ["grid", "tpe"])   # random: test_interrupted_sweep_resumes
def test_tiny_sweep_each_sampler(sampler, fer_csv, tmp_path):
    space = parse_space(["lr=log:1e-3:1e-2", "label_smoothing=choice:0.0,0.1", "width=choice:0.5,1.0"])
    base = dataclasses.replace(_tiny(fer_csv), width=1.0)   # the smallest real model: its width is swept
    report = run_sweep(SweepConfig(base, space, sampler, trials=2, out=str(tmp_path / sampler),
                                   prune=False, grid_points=2), log=lambda *_: None)
    from edgefer.models import build_model

    parameters = {width: build_model("cnn", width=width).count_params() for width in (0.5, 1.0)}
    assert [t["state"] for t in report["trials"]] == ["COMPLETE"] * 2
    for trial in report["trials"]:
        run = json.loads((tmp_path / sampler / "trials" / f"trial{trial['number']}" / "args.json").read_text())
        assert run["lr"] == pytest.approx(trial["params"]["lr"])  # each trial really trained with its values
        assert run["label_smoothing"] == trial["params"]["label_smoothing"]
        metrics = json.loads((tmp_path / sampler / "trials" / f"trial{trial['number']}" / "metrics.json").read_text())
        assert metrics["parameters"] == parameters[trial["params"]["width"]]   # filter widths really swept
        assert 0 < trial["value"] <= 1
    if sampler == "grid":
        combos = {tuple(t["params"].values()) for t in report["trials"]}
        assert len(combos) == 2  # grid points are not repeated
    assert report["best"]["value"] == max(t["value"] for t in report["trials"])
    for name in ("sweep.md", "sweep.json", "sweep.png", "study.db"):
        assert (tmp_path / sampler / name).stat().st_size > 0


def test_interrupted_sweep_resumes(fer_csv, tmp_path, monkeypatch):
    config = SweepConfig(_tiny(fer_csv), parse_space(["lr=log:1e-3:1e-2"]), "random", trials=2,
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
    longer = dataclasses.replace(config, resume=True, base=dataclasses.replace(config.base, epochs=2))
    with pytest.raises(SweepError, match="trains with --epochs 1, not 2"):
        run_sweep(longer, log=lambda *_: None)   # not only the space: the trials must train the same thing
    other_data = tmp_path / "other.csv"
    other_data.write_text("emotion,pixels,Usage\n")
    with pytest.raises(SweepError, match="trains on .* not on .*other.csv"):
        run_sweep(dataclasses.replace(config, resume=True, base=dataclasses.replace(config.base, data=str(other_data))),
                  log=lambda *_: None)
    monkeypatch.chdir(fer_csv.parent)   # the same data by another path: the study goes on
    same = dataclasses.replace(config, resume=True, base=dataclasses.replace(config.base, data=fer_csv.name))
    messages = []
    report = run_sweep(same, log=messages.append)
    assert "1 finished trial(s)" in messages[0] and "running 1 more" in messages[0]
    states = [t["state"] for t in report["trials"]]
    assert states[0] == "COMPLETE" and states[1] == "FAIL" and len(states) == 3
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == 2
    lrs = [t["params"]["lr"] for t in report["trials"]]
    assert len(set(lrs)) == 3   # the resumed sampler does not replay the first run's draws


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


def _study_with_running(tmp_path, workers):
    """A SQLite study in <tmp>/shared whose trials were started by `workers` (host:pid) and are RUNNING."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (tmp_path / "shared").mkdir(parents=True)
    storage = f"sqlite:///{tmp_path / 'shared' / 'study.db'}"
    study = optuna.create_study(study_name="shared", storage=storage, direction="maximize")
    for k, worker in enumerate(workers):
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True)})
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("worker_pid", int(worker.rsplit(":", 1)[1]))
    return study


def test_dead_workers_are_matched_by_host_and_pid_and_their_trials_retried(tmp_path):
    """A parent fails the trials of its own dead worker, not another machine's trial with the same pid; the
    failed trial is queued again with its values."""
    pid = 4242
    study = _study_with_running(tmp_path, [f"otherhost:{pid}", worker_id(pid)])
    assert fail_trials_of(study, worker_id(pid)) == [1]
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["RUNNING", "FAIL", "WAITING"]
    assert trials[2].params == {} and trials[2].system_attrs["fixed_params"] == trials[1].params
    assert trials[2].user_attrs["retry_of"] == 1


def test_trials_count_the_whole_study_and_dead_local_workers_are_found(fer_csv, tmp_path):
    """--trials is the study's total across machines: with two trials RUNNING elsewhere, `--trials 2` starts
    none; a RUNNING trial whose worker on this machine is gone is failed and retried by the next run."""
    import psutil

    dead = max(psutil.pids()) + 100_000
    _study_with_running(tmp_path, ["otherhost:1", "otherhost:2"])
    config = SweepConfig(_tiny(fer_csv), parse_space(["lr=log:1e-3:1e-2"]), "random", trials=2,
                         out=str(tmp_path / "shared"), resume=True)
    messages = []
    report = run_sweep(config, log=messages.append)
    assert "0 finished trial(s)" in messages[0] and "2 running elsewhere, running 0 more" in messages[0]
    assert [t["state"] for t in report["trials"]] == ["RUNNING", "RUNNING"] and report["best"] is None

    study = _study_with_running(tmp_path / "b", [worker_id(dead)])
    messages = []
    run_sweep(dataclasses.replace(config, out=str(tmp_path / "b" / "shared"), trials=1), log=messages.append)
    assert f"worker {worker_id(dead)} is gone; its running trial(s) [0] failed" in messages[0]
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[1].params == trials[0].params and trials[1].user_attrs["retry_of"] == 0


def test_a_new_sweep_refuses_a_folder_with_another_sweeps_runs(fer_csv, tmp_path):
    out = tmp_path / "study"
    (out / "trials" / "trial0").mkdir(parents=True)
    config = SweepConfig(_base(fer_csv), parse_space(["lr=log:1e-3:1e-2"]), "random", trials=1, out=str(out))
    with pytest.raises(SweepError, match=r"holds another sweep's trials, but no study 'study'"):
        run_sweep(config, log=lambda *_: None)
    assert (out / "trials" / "trial0").is_dir()   # nothing of it removed


def test_heartbeats_fail_a_killed_sweeps_trial_and_the_next_run_retries_it(fer_csv, postgres_url, tmp_path):
    """PostgreSQL with heartbeats: a whole sweep killed with -9 mid-trial leaves a RUNNING trial; once its
    heartbeat is stale, the next `sweep --resume` fails it (fail_stale_trials) and Optuna's retry runs the same
    values again, recorded as a retry of it."""
    import optuna

    out = tmp_path / "beat"
    command = [sys.executable, "-m", "edgefer", "sweep", "--data", str(fer_csv), "--space", "lr=log:1e-3:1e-2",
               "--sampler", "random", "--trials", "2", "--storage", postgres_url, "--out", str(out),
               "--recipe", "quick", "--model", "cnn", "--limit", "96", "--epochs", "2", "--no-prune",
               "--heartbeat-seconds", "1"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storage = optuna.storages.RDBStorage(postgres_url)
    deadline, running = time.time() + 300, None
    while time.time() < deadline and running is None and first.poll() is None:
        time.sleep(0.3)
        try:
            trials = optuna.load_study(study_name="beat", storage=storage).get_trials(deepcopy=False)
        except KeyError:
            continue
        running = next((t for t in trials if t.state.name == "RUNNING"
                        and (out / "trials" / f"trial{t.number}" / "history.csv").exists()), None)
    assert running is not None, first.communicate(timeout=60)
    first.kill()
    first.wait()
    time.sleep(3)   # past the grace period (2 x --heartbeat-seconds)
    second = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    trials = optuna.load_study(study_name="beat", storage=storage).get_trials(deepcopy=False)
    killed = trials[running.number]
    assert killed.state.name == "FAIL"
    retries = [t for t in trials if t.system_attrs.get("retry_history") == [running.number]]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE" and retries[0].params == killed.params
    assert sum(t.state.name == "COMPLETE" for t in trials) == 2 and "RUNNING" not in [t.state.name for t in trials]
    report = json.loads((out / "sweep.json").read_text())
    assert [t["retry_of"] for t in report["trials"]].count(running.number) == 1


def test_a_journal_storage_holds_the_study_outside_out(fer_csv, tmp_path):
    """`--storage journal:PATH` (many processes, one file system): the study lives in the journal file, not in
    --out; a second run with --resume continues it there."""
    journal = tmp_path / "shared" / "study.log"
    config = SweepConfig(_tiny(fer_csv), parse_space(["lr=log:1e-3:1e-2"]), "random", trials=1,
                         out=str(tmp_path / "j"), prune=False, storage=f"journal:{journal}")
    run_sweep(config, log=lambda *_: None)
    assert journal.stat().st_size > 0 and not (tmp_path / "j" / "study.db").exists()
    messages = []
    report = run_sweep(dataclasses.replace(config, resume=True), log=messages.append)
    assert f"1 finished trial(s) in journal:{journal}, running 0 more" in messages[0]
    assert [t["state"] for t in report["trials"]] == ["COMPLETE"]
