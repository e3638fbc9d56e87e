"""Job manager: background threads, one run per device at a time, queue, stop."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import tiny_config
from transfer_core.config import ConfigError
from transfer_core.jobs import JobManager
from transfer_core.runs import Run


def _wait_state(run: Run, states, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if run.status()["state"] in states:
            return run.status()["state"]
        time.sleep(0.05)
    raise AssertionError(f"run never reached {states}: {run.status()}")


def test_submit_runs_in_background_and_completes(runs_root):
    jm = JobManager(runs_root, threads=1)
    try:
        rid = jm.submit(tiny_config())
        assert jm.is_active(rid)
        assert jm.wait(rid, 120)
        run = Run(runs_root / rid)
        assert run.status()["state"] == "completed"
        assert len(run.metrics()) == 2
        assert run.progress()["epoch"] == 2
    finally:
        jm.shutdown()


def test_one_at_a_time_second_queues_stop_removes_queued(runs_root):
    jm = JobManager(runs_root, threads=1)
    try:
        a = jm.submit(tiny_config(train__epochs=30))
        b = jm.submit(tiny_config(train__epochs=1))
        c = jm.submit(tiny_config(train__epochs=1))
        _wait_state(Run(runs_root / a), ("running",))
        states = {j["run_id"]: j["state"] for j in jm.jobs()}
        assert states == {a: "running", b: "queued", c: "queued"}
        assert jm.stop(c)  # a queued run is removed
        assert Run(runs_root / c).status()["state"] == "stopped"
        assert c not in {j["run_id"] for j in jm.jobs()}
        assert jm.stop(a)  # the running one stops within a batch
        assert _wait_state(Run(runs_root / a), ("stopped",), 30) == "stopped"
        assert jm.wait(b, 120)
        assert Run(runs_root / b).status()["state"] == "completed"
    finally:
        jm.shutdown()


def test_invalid_config_is_refused_before_queueing(runs_root):
    jm = JobManager(runs_root)
    try:
        with pytest.raises(ConfigError):
            jm.submit(tiny_config(train__epochs=0))
        assert not runs_root.exists() or not any(runs_root.iterdir())
    finally:
        jm.shutdown()


def test_bad_data_marks_the_run_failed_and_worker_survives(runs_root):
    jm = JobManager(runs_root)
    try:
        bad = jm.submit(tiny_config(data={"dataset": "no_such_folder"}))
        assert jm.wait(bad, 60)
        st = Run(runs_root / bad).status()
        assert st["state"] == "failed" and "no_such_folder" in st["message"]
        good = jm.submit(tiny_config(train__epochs=1))
        assert jm.wait(good, 120)
        assert Run(runs_root / good).status()["state"] == "completed"
    finally:
        jm.shutdown()


def test_concurrent_submits_are_thread_safe(runs_root):
    jm = JobManager(runs_root)
    ids = []
    lock = threading.Lock()

    def go():
        rid = jm.submit(tiny_config(train__epochs=1))
        with lock:
            ids.append(rid)

    try:
        ts = [threading.Thread(target=go) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert len(set(ids)) == 2
        for rid in ids:
            assert jm.wait(rid, 120)
            assert Run(runs_root / rid).status()["state"] == "completed"
    finally:
        jm.shutdown()


def test_ui_threads_leave_a_core_unless_told(monkeypatch):
    from transfer_core.jobs import ui_threads

    monkeypatch.delenv("TRANSFER_LAB_TRAIN_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert ui_threads() == 7
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert ui_threads() == 1
    monkeypatch.setenv("TRANSFER_LAB_TRAIN_THREADS", "2")
    assert ui_threads() == 2
    monkeypatch.setenv("TRANSFER_LAB_TRAIN_THREADS", "lots")  # not a count: the default
    assert ui_threads() == 1
