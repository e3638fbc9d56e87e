"""Run store: layout, atomic writes, interrupted detection, lookups."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import tiny_config
from transfer_core.runs import Run, RunStore, atomic_write_text


def test_create_layout_and_lookup(runs_root):
    store = RunStore(runs_root)
    run = store.create(tiny_config(name="my run"), state="queued")
    assert run.config_path.exists() and run.status_path.exists()
    assert "my-run" in run.id
    assert store.get(run.id).dir == run.dir
    assert store.get(str(run.dir)).dir == run.dir
    assert store.get(run.id[:20]).dir == run.dir  # unique prefix
    with pytest.raises(ValueError, match="no run"):
        store.get("does-not-exist")


def test_running_run_of_a_dead_process_is_interrupted(runs_root):
    store = RunStore(runs_root)
    run = store.create(tiny_config(), state="running")
    # pretend another process owned it, and that process is gone
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    st = json.loads(run.status_path.read_text())
    st.update(pid=p.pid, token="someone-else", pid_start=None)
    atomic_write_text(run.status_path, json.dumps(st))
    assert run.status()["state"] == "interrupted"
    assert store.list()[0].state == "interrupted"
    # a live owner keeps it running
    st.update(pid=os.getppid(), token="someone-else")
    atomic_write_text(run.status_path, json.dumps(st))
    assert run.status()["state"] == "running"


def test_metrics_append_truncate_and_torn_line(runs_root):
    run = RunStore(runs_root).create(tiny_config())
    for e in (1, 2, 3):
        run.append_metrics({"epoch": e, "val_acc": e / 10})
    run.truncate_metrics(2)
    assert [r["epoch"] for r in run.metrics()] == [1, 2]
    with open(run.metrics_path, "a") as fh:
        fh.write('{"epoch": 3, "val_')  # a crash mid-write
    assert [r["epoch"] for r in run.metrics()] == [1, 2]


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    target = tmp_path / "w" / "f.json"
    atomic_write_text(target, "old")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["f.json"]


def test_damaged_run_still_lists(runs_root):
    store = RunStore(runs_root)
    run = store.create(tiny_config())
    run.status_path.write_text("{not json")
    s = store.list()[0]
    assert s.state == "interrupted"
    assert isinstance(Run(run.dir).summary().message, str)


def test_config_dict_is_parsed_once_per_file_version_and_copied(runs_root, monkeypatch):
    from transfer_core import runs as runs_mod

    run = RunStore(runs_root).create(tiny_config(name="cached"), state="queued")
    calls = {"n": 0}
    real = runs_mod.parse_yaml_text

    def counting(*a, **kw):
        calls["n"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(runs_mod, "parse_yaml_text", counting)
    runs_mod._parsed_config.cache_clear()
    a = run.config_dict()
    a["train"]["epochs"] = 999  # a caller's change must not leak into the next reader
    b = run.config_dict()
    assert calls["n"] == 1 and b["train"]["epochs"] == tiny_config().train.epochs
    text = run.config_path.read_text().replace("name: cached", "name: renamed")
    atomic_write_text(run.config_path, text)
    os.utime(run.config_path, ns=(1, 1))  # a new version even within the clock's resolution
    assert run.config_dict()["name"] == "renamed" and calls["n"] == 2
