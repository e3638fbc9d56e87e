"""Run store: layout, atomic writes, interrupted detection, lookups."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import tiny_config
from transfer_core.runs import Run, RunStore, atomic_link_or_write, atomic_write_bytes, atomic_write_text


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


def test_best_is_a_link_that_keeps_its_epoch_when_checkpoint_moves_on(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ckpt, best = run_dir / "checkpoint.pt", run_dir / "best.pt"
    atomic_write_bytes(ckpt, b"epoch 1")
    atomic_link_or_write(ckpt, best, b"epoch 1")
    assert os.path.samefile(ckpt, best)  # no second copy on disk
    atomic_write_bytes(ckpt, b"epoch 2")  # a later, worse epoch
    assert best.read_bytes() == b"epoch 1" and ckpt.read_bytes() == b"epoch 2"
    atomic_link_or_write(ckpt, best, b"epoch 2")  # replaces an existing best.pt
    assert best.read_bytes() == b"epoch 2" and os.path.samefile(ckpt, best)
    assert sorted(p.name for p in run_dir.iterdir()) == ["best.pt", "checkpoint.pt"]


def test_best_is_written_where_the_filesystem_has_no_hard_links(tmp_path, monkeypatch):
    ckpt, best = tmp_path / "checkpoint.pt", tmp_path / "best.pt"
    atomic_write_bytes(ckpt, b"epoch 1")

    def no_links(*a, **k):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    atomic_link_or_write(ckpt, best, b"epoch 1")
    assert best.read_bytes() == b"epoch 1" and not os.path.samefile(ckpt, best)


def test_a_training_run_keeps_one_copy_of_its_best_epoch(runs_root):
    from transfer_core.training import load_checkpoint, run_training

    run = run_training(tiny_config(train__epochs=2), runs_root).run
    best = max(run.metrics(), key=lambda r: r["val_acc"])["epoch"]
    assert load_checkpoint(run.best_path)["epoch"] == best
    assert os.path.samefile(run.best_path, run.checkpoint_path) == (best == 2)


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
