"""Sweeps end to end: the CLI, the sweep folder's tables, crash safety, workers sharing a storage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from transfer_core.errors import ConfigError
from transfer_core.runs import RunStore
from transfer_core.sweeps import stats
from transfer_core.sweeps.folder import read_results, sweep_dir
from transfer_core.sweeps.spec import load_sweep

ROOT = Path(__file__).resolve().parents[1]

SOURCE = {
    "name": "sw-source", "seed": 0, "method": "transfer",
    "data": {"dataset": "digits", "classes": [0, 1, 2], "image_size": 16, "val_fraction": 0.2},
    "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}],
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.003, "device": "cpu"},
}
TARGET = {
    "name": "sw-target", "seed": 0, "method": "transfer",
    "data": {"dataset": "digits", "classes": [3, 4, 5], "train_per_class": 4, "image_size": 16, "val_fraction": 0.2},
    "backbones": [{"name": "resnet18", "weights": "run:sw-source", "freeze": 3}],
    "train": {"epochs": 1, "batch_size": 8, "lr": 0.003, "device": "cpu", "checkpoint_every_s": 0},
}


def labels_sweep(seeds=(0, 1), per_class=(2, 5)) -> dict:
    """The issue's labels-curve YAML, shrunk: digits 0-2 -> 3-5, 16 px, one epoch."""
    return {
        "name": "labels-curve",
        "base": TARGET,
        "before": [SOURCE],
        "seeds": list(seeds),
        "axes": {
            "data.train_per_class": list(per_class),
            "variant": {
                "scratch": {"backbones.0.weights": "none", "backbones.0.freeze": 0},
                "transfer": {"backbones.0.weights": "run:sw-source", "backbones.0.freeze": 3},
            },
        },
    }


def _cli(args, env_runs: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRANSFER_LAB_RUNS": str(env_runs), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "transfer_core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, **kw)


def _write(tmp_path: Path, data: dict, name="sweep.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def _trial_runs(runs: Path) -> list[dict]:
    """The sweep record of every run folder that belongs to a sweep."""
    out = []
    for r in RunStore(runs).runs():
        if (r.dir / "sweep.json").is_file():
            out.append({**r.read_json("sweep.json"), "run": r})
    return out


# --------------------------------------------------------------------------- the spec


def test_sweep_spec_expands_the_grid_times_the_seeds():
    spec = load_sweep(labels_sweep(seeds=(0, 1, 2), per_class=(1, 2, 5)))
    assert spec.n_trials == 3 * 2 * 3
    assert spec.points()[0] == {"data.train_per_class": 1, "variant": "scratch"}
    cfg = spec.trial_config({"data.train_per_class": 5, "variant": "transfer"}, seed=2)
    assert (cfg.seed, cfg.data.train_per_class, cfg.backbones[0].weights, cfg.backbones[0].freeze) == (2, 5, "run:sw-source", 3)
    # the name is the same for every seed: sibling runs over seeds share it
    assert cfg.name == spec.trial_config({"data.train_per_class": 5, "variant": "transfer"}, seed=0).name
    # the resolved spec written to sweep.yaml reads back to the same sweep (same folder)
    assert load_sweep(spec.to_dict()).fingerprint() == spec.fingerprint()


@pytest.mark.parametrize("change, field", [
    ({"colour": 1}, "colour"),
    ({"axes": {"data.train_per_class": []}}, "axes.data.train_per_class"),
    ({"axes": {"data.train_per_class": [0]}}, "data.train_per_class"),
    ({"axes": {"variant": {"x": {"train.epochs": -1}}}}, "train.epochs"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"search": {"train.lr": {"log_uniform": [0, 1]}, "n_trials": 3}}, "search.train.lr"),
    ({"base": {"train": {"epoch": 3}}}, "base.train.epoch"),
])
def test_bad_sweep_is_one_error_naming_the_field(change, field):
    with pytest.raises(ConfigError) as exc:
        load_sweep({**labels_sweep(), **change})
    assert str(exc.value).startswith(field)


def test_cli_bad_sweep_exits_2_with_one_line(tmp_path):
    p = _write(tmp_path, {**labels_sweep(), "axes": {"train.epochs": [0]}})
    r = _cli(["sweep", str(p)], tmp_path / "runs")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: train.epochs")
    assert not (tmp_path / "runs" / "_sweeps").exists() or not any((tmp_path / "runs").glob("2*"))


# --------------------------------------------------------------------------- a whole sweep


def _recomputed(runs: Path, spec) -> tuple[list[dict], list[dict]]:
    """summary and paired rows computed by the test from the run folders alone."""
    rows = []
    for rec in _trial_runs(runs):
        run = rec["run"]
        accs = [m["val_acc"] for m in run.metrics()]
        rows.append({**rec["point"], "seed": rec["seed"], "state": run.status()["state"], "val_acc": accs[-1],
                     "train_s": sum(m["seconds"] for m in run.metrics())})
    axes = spec.axis_labels()
    return stats.summarize(rows, axes), stats.paired(rows, axes)


def _close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) < 1e-6


def test_cli_sweep_writes_every_table_and_they_match_the_run_folders(tmp_path):
    runs = tmp_path / "runs"
    p = _write(tmp_path, labels_sweep())
    r = _cli(["sweep", str(p)], runs)
    assert r.returncode == 0, r.stderr
    out = Path(r.stdout.strip().splitlines()[-1])
    spec = load_sweep(p)
    assert out == sweep_dir(spec, runs)
    for name in ("sweep.yaml", "trials.csv", "summary.csv", "paired.csv", "state.json"):
        assert (out / name).is_file(), name
    assert r.stdout.count("] data.train_per_class=") == 8  # one progress line per trial

    res = read_results(out)
    assert res.state == "completed" and res.n_done == res.n_total == 8
    assert len(res.trials) == 8 and {t["state"] for t in res.trials} == {"completed"}
    assert sorted((t["data.train_per_class"], t["variant"], t["seed"]) for t in res.trials) == sorted(
        (n, v, s) for n in (2, 5) for v in ("scratch", "transfer") for s in (0, 1))
    # every trial is an ordinary run recording its sweep, its axis values and seed; the source ran once
    recs = _trial_runs(runs)
    assert len(recs) == 8 and len(RunStore(runs).runs()) == 9
    assert {rec["run"].id for rec in recs} == {t["run_id"] for t in res.trials}
    for t in res.trials:
        run = RunStore(runs).get(t["run_id"])
        assert _close(t["val_acc"], run.summary().val_acc)
        assert t["wall_s"] >= t["train_s"] > 0  # the whole trial includes its set-up
        assert _close(t["wall_s"], run.read_json("sweep.json")["wall_s"])

    summary, paired = _recomputed(runs, spec)
    assert len(res.summary) == 4 and len(summary) == 4
    for mine, theirs in zip(summary, res.summary):
        assert mine["n"] == theirs["n"] == 2
        for k in ("val_acc_mean", "val_acc_ci_low", "val_acc_ci_high", "train_s_mean"):
            assert _close(mine[k], theirs[k]), k
    assert len(res.paired) == len(paired) == 4  # 2 per axis: (2 vs 5) at each variant, (scratch vs transfer) at each size
    for mine, theirs in zip(paired, res.paired):
        assert (mine["axis"], mine["a"], mine["b"], mine["at"]) == (theirs["axis"], theirs["a"], theirs["b"], theirs["at"])
        assert _close(mine["mean_diff"], theirs["mean_diff"])
        assert (mine["wins"], mine["ties"], mine["losses"]) == (theirs["wins"], theirs["ties"], theirs["losses"])

    # the same command again runs nothing and says where the sweep is
    again = _cli(["sweep", str(p)], runs)
    assert again.returncode == 0 and Path(again.stdout.strip().splitlines()[-1]) == out
    assert "] data" not in again.stdout and len(RunStore(runs).runs()) == 9


def test_kill_9_mid_sweep_then_the_same_command_completes_without_running_a_trial_twice(tmp_path):
    runs = tmp_path / "runs"
    p = _write(tmp_path, labels_sweep(seeds=(0, 1, 2)))  # 12 trials
    env = {**os.environ, "TRANSFER_LAB_RUNS": str(runs), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "transfer_core", "sweep", str(p)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill once a few trials are done and another is in flight
        recs = _trial_runs(runs)
        done = [r for r in recs if r["run"].status().get("state") == "completed"]
        if len(done) >= 3 and len(recs) > len(done):
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {r["run"].id: (r["run"].dir / "metrics.jsonl").stat().st_mtime_ns
              for r in _trial_runs(runs) if r["run"].status().get("state") == "completed"}
    assert 3 <= len(before) < 12

    r = _cli(["sweep", str(p)], runs)
    assert r.returncode == 0, r.stderr
    res = read_results(Path(r.stdout.strip().splitlines()[-1]))
    assert res.state == "completed" and res.n_done == 12
    recs = _trial_runs(runs)
    keys = [(rec["trial"], rec["seed"]) for rec in recs]
    assert len(recs) == 12 and len(set(keys)) == 12  # one folder per trial: the interrupted one was resumed
    assert len(RunStore(runs).runs()) == 13  # + the source, trained once
    for rid, mtime in before.items():  # completed trials were not trained again
        assert (RunStore(runs).get(rid).dir / "metrics.jsonl").stat().st_mtime_ns == mtime
    assert {t["state"] for t in res.trials} == {"completed"}


def test_two_worker_processes_on_one_storage_finish_12_trials_without_a_duplicate(tmp_path):
    runs = tmp_path / "runs"
    p = _write(tmp_path, labels_sweep(seeds=(0, 1, 2)))
    r = _cli(["sweep", str(p), "--workers", "2"], runs)
    assert r.returncode == 0, r.stderr
    recs = _trial_runs(runs)
    assert len(recs) == 12 and len({(rec["trial"], rec["seed"]) for rec in recs}) == 12
    assert len({json.dumps(rec["point"], sort_keys=True) + str(rec["seed"]) for rec in recs}) == 12
    pids = {rec["run"].raw_status().get("pid") for rec in recs}
    assert len(pids) == 2  # both workers trained
    assert read_results(Path(r.stdout.strip().splitlines()[-1])).n_done == 12


def test_stop_keeps_finished_trials_and_start_again_finishes_the_rest(tmp_path):
    from transfer_core.sweeps.jobs import SweepJobs

    runs = tmp_path / "runs"
    spec = load_sweep(labels_sweep(seeds=(0,)))
    jobs = SweepJobs(runs)
    path = jobs.start(spec)
    deadline = time.time() + 120
    while time.time() < deadline and len([r for r in _trial_runs(runs) if r["run"].status()["state"] == "completed"]) < 1:
        time.sleep(0.05)
    jobs.stop()
    assert jobs.wait(120)
    first = read_results(path)
    assert first.state == "stopped" and 1 <= first.n_done < 4
    kept = {t["run_id"] for t in first.trials if t["state"] == "completed"}

    assert jobs.start(spec) == path  # the same spec resumes its folder
    assert jobs.wait(300) and jobs.error() is None
    res = read_results(path)
    assert res.state == "completed" and res.n_done == 4
    assert kept <= {t["run_id"] for t in res.trials}
    assert len(_trial_runs(runs)) == 4


def test_search_samples_with_tpe_and_runs_each_point_over_the_seeds(tmp_path):
    runs = tmp_path / "runs"
    data = {"name": "lr-search", "base": {**TARGET, "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}]},
            "seeds": [0, 1], "search": {"n_trials": 2, "train.lr": {"log_uniform": [1.0e-4, 1.0e-2]}}}
    r = _cli(["sweep", str(_write(tmp_path, data))], runs)
    assert r.returncode == 0, r.stderr
    res = read_results(Path(r.stdout.strip().splitlines()[-1]))
    assert res.n_total == 4 and res.n_done == 4
    lrs = {t["train.lr"] for t in res.trials}
    assert len(lrs) == 2 and all(1e-4 <= lr <= 1e-2 for lr in lrs)
    for t in res.trials:
        assert RunStore(runs).get(t["run_id"]).config().train.lr == pytest.approx(t["train.lr"])


def test_a_database_storage_url_serves_the_workers_and_lines_show_every_workers_trials(tmp_path):
    runs = tmp_path / "runs"
    data = {"name": "rdb", "base": {**TARGET, "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}]},
            "seeds": [0, 1, 2], "axes": {"train.lr": [0.001, 0.003]}}
    r = _cli(["sweep", str(_write(tmp_path, data)), "--workers", "2", "--storage", f"sqlite:///{tmp_path / 'o.db'}"], runs)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.db").is_file() and not list(runs.glob("_sweeps/*/optuna.journal"))
    counts = [int(line.split("/")[0][1:]) for line in r.stdout.splitlines() if line.startswith("[")]
    assert len(counts) == 6 and max(counts) == 6  # one line per trial, from both workers
    recs = _trial_runs(runs)
    assert len(recs) == 6 and len({(rec["trial"], rec["seed"]) for rec in recs}) == 6
