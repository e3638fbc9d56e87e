"""Crash safety: a training process killed with SIGKILL mid-epoch, then resumed.

* CLI: ``python -m transfer_core train`` is killed (kill -9) while the epoch after a
  finished one is running; ``runs`` lists it as "interrupted", the finished epochs'
  metrics are intact, and ``resume RUN_DIR`` completes it with every epoch exactly once.
* App: the process that hosts the dashboard's job manager (an AppTest session that
  pressed Start, in a child process: what a Streamlit server is) is killed mid-run; a
  fresh session on the same runs folder shows the run "interrupted" on Results with a
  Resume button, and Resume completes it with epochs 1..N exactly once.

Tiny runs: resnet18 at 32 px on 3 digit classes, CPU, one torch thread.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from transfer_core.runs import Run

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 4
DATA = {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 24, "val_fraction": 0.2, "image_size": 32}


def _run_dir(runs: Path) -> Path | None:
    made = [p for p in runs.iterdir() if (p / "config.yaml").is_file()] if runs.is_dir() else []
    return made[0] if len(made) == 1 else None


def _kill_mid_epoch(proc: subprocess.Popen, runs: Path, log: Path, timeout: float = 420.0) -> Path:
    """Wait until an epoch has finished and a batch of the next one ran, then SIGKILL ``proc``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the training process ended early ({proc.returncode}): {log.read_text()[-2000:]}")
        rd = _run_dir(runs)
        if rd is not None:
            run = Run(rd)
            done = len(run.metrics())
            p = run.progress() or {}
            if 1 <= done < EPOCHS and p.get("phase") == "train" and p.get("epoch") == done + 1 and p.get("batch", 0) >= 1:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(30)  # reaped: a zombie would still look alive
                return rd
        time.sleep(0.05)
    proc.kill()
    proc.wait(30)
    pytest.fail(f"no epoch finished in {timeout:.0f}s: {log.read_text()[-2000:]}")


def _saved_epoch(rd: Path) -> int:
    """The epoch of the checkpoint a kill left (later finished epochs may have been held in memory)."""
    from transfer_core.checkpoint_files import read_checkpoint

    return int(read_checkpoint(Run(rd).checkpoint_path)["epoch"])


def _assert_resumed(rd: Path, before: list[dict], saved: int) -> None:
    run = Run(rd)
    rows = run.metrics()
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1)), rows
    assert 1 <= saved <= len(before)
    assert rows[:saved] == before[:saved], "metrics of the checkpointed epochs changed"
    if saved < len(before):  # epochs finished after the last checkpoint were trained again, and it says so
        assert any("were not saved" in w or "was not saved" in w for w in run.status().get("warnings", []))
    assert run.status()["state"] == "completed"
    lines = run.metrics_path.read_text().splitlines()
    assert len(lines) == EPOCHS and all(json.loads(line) for line in lines)


def _cli(*args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transfer_core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_cli_kill_9_mid_epoch_then_resume(tmp_path):
    runs = tmp_path / "runs"
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({
        "seed": 0, "data": DATA, "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}],
        "train": {"epochs": EPOCHS, "batch_size": 8, "device": "cpu", "threads": 1},
    }))
    log = tmp_path / "train.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "transfer_core", "train", str(cfg), "--runs-dir", str(runs)],
                                cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
    rd = _kill_mid_epoch(proc, runs, log)
    run = Run(rd)
    before = run.metrics()
    saved = _saved_epoch(rd)
    assert before and [r["epoch"] for r in before] == list(range(1, len(before) + 1))
    assert len(run.metrics_path.read_text().splitlines()) == len(before), "a torn metrics line"

    listing = _cli("runs", "--runs-dir", str(runs))
    assert listing.returncode == 0, listing.stderr
    line = next(ln for ln in listing.stdout.splitlines() if rd.name in ln)
    assert " interrupted " in line and f"{len(before)}/{EPOCHS}" in line, line

    res = _cli("resume", str(rd), "-q")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == str(rd)
    _assert_resumed(rd, before, saved)


# --------------------------------------------------------------------------- the app

_APP_CHILD = textwrap.dedent("""
    import sys, time
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(sys.argv[1], default_timeout=300)
    at.session_state["draft_data"] = {draft!r}
    at.run()
    at.number_input(key="epochs").set_value({epochs})
    at.select_slider(key="batch_size").set_value(8)
    at.run()
    at.button(key="start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    print("started", flush=True)
    while True:  # the job manager's worker thread trains; this process just stays up
        time.sleep(1)
""")


@pytest.fixture
def fresh_streamlit_caches():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()  # on_release: shuts the job manager down
    st.cache_data.clear()


def test_app_process_killed_mid_run_then_resume_from_results(tmp_path, fresh_streamlit_caches):
    from streamlit.testing.v1 import AppTest

    runs = tmp_path / "runs"  # conftest points TRANSFER_LAB_RUNS here, for the child too
    child = tmp_path / "app_child.py"
    child.write_text(_APP_CHILD.format(draft=DATA, epochs=EPOCHS))
    log = tmp_path / "app_child.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, str(child), str(ROOT / "app.py")], cwd=ROOT, stdout=fh,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    rd = _kill_mid_epoch(proc, runs, log)
    before = Run(rd).metrics()
    saved = _saved_epoch(rd)
    assert before, "an epoch finished before the kill"

    # a fresh "server" on the same runs folder
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params["run"] = rd.name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page("pages/results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="results_run").value == rd.name
    assert any(m.label == "State" and m.value == "interrupted" for m in at.metric), [(m.label, m.value) for m in at.metric]
    assert any("Interrupted" in w.value for w in at.warning)
    at.button(key="resume").click().run()
    assert not at.exception, [e.value for e in at.exception]

    deadline = time.monotonic() + 420
    # raw_status: while our worker prepares data and model, status() may say "interrupted" (pages know)
    while Run(rd).raw_status()["state"] != "completed" and time.monotonic() < deadline:
        assert Run(rd).raw_status()["state"] in ("queued", "running"), Run(rd).raw_status()
        time.sleep(0.25)
    _assert_resumed(rd, before, saved)
    at.switch_page("pages/results.py").run()
    assert not at.exception
    assert any(m.label == "State" and m.value == "completed" for m in at.metric)
    assert not any(b.key == "resume" for b in at.button), "a completed run offers no Resume"
