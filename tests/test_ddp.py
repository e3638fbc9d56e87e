"""Scale-out with torchrun + DDP on the CPU (gloo, 2 processes), and the dashboard's launcher.

Every run here is tiny (3 digit classes, resnet18 at 32 px, one torch thread per rank).
Most of the time is torchrun starting two Python processes that import torch: each
test pays that once or twice.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import tiny_config
from transfer_core import distributed
from transfer_core.distributed.launch import _children
from transfer_core.jobs import JobManager, resume_plan
from transfer_core.runs import Run, RunStore
from transfer_core.training import load_checkpoint, prepare, run_training

ROOT = Path(__file__).resolve().parents[1]

#: |val_acc(2 processes) - val_acc(1 process)| allowed after the same seeded run.
#: Why not equal: both runs see the same global batch size (each rank takes half) and
#: DDP averages the gradients, so every step is the single-process step on *a* batch
#: of the same size; but DistributedSampler orders the samples differently from the
#: single-process shuffle, so the batches differ. On this linear probe (107 validation
#: images) that moves the final accuracy by a few images: 0.1 is ~10 images, while a
#: DDP run that did not sync gradients, or evaluated half the split, is far off or
#: caught by the exact checks below.
ACC_TOLERANCE = 0.1

PROBE = {
    "seed": 0,
    "data": {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 100, "val_fraction": 0.2, "image_size": 32},
    "backbones": [{"name": "resnet18", "weights": "none", "freeze": "all"}],
    "train": {"epochs": 4, "batch_size": 16, "lr": 0.01, "device": "cpu", "threads": 1},
}
RUN_FILES = ("config.yaml", "status.json", "metrics.jsonl", "confusion.json", "per_class.json",
             "checkpoint.pt", "best.pt", "data_info.json", "progress.json")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)  # the autouse fixture's TRANSFER_LAB_* folders
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def torchrun(*args, nproc: int = 2, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc_per_node=N --master_port=<free> -m transfer_core ARGS``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={_free_port()}",
           "-m", "transfer_core", *map(str, args)]
    tmp = tempfile.mkdtemp(prefix="tl-torchrun-")  # torchrun's torchelastic_* folders: removed with it, not left in /tmp
    try:
        return subprocess.run(cmd, cwd=ROOT, env={**(env or _env()), "TMPDIR": tmp}, capture_output=True, text=True,
                              timeout=timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _assert_complete(run: Run, epochs: int, n_val: int) -> None:
    for name in RUN_FILES:
        assert (run.dir / name).is_file(), name
    st = run.status()
    assert st["state"] == "completed", st
    rows = run.metrics()
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))  # every epoch once: only rank 0 writes
    conf = run.confusion()
    assert sum(map(sum, conf["matrix"])) == n_val  # the gathered predictions: every image once, no padding
    ckpt = load_checkpoint(run.checkpoint_path)
    assert ckpt["epoch"] == epochs
    assert not any(k.startswith("module.") for k in ckpt["model"])  # the plain model, not the DDP wrapper


def _features(cache: Path) -> dict[str, dict]:
    return {str(p.relative_to(cache)): torch.load(p, weights_only=True) for p in sorted(cache.rglob("*.pt"))}


@pytest.mark.slow
def test_ddp_run_matches_single_process_and_builds_the_same_cache(tmp_path, monkeypatch):
    """2 gloo ranks vs 1 process, same seeded linear probe (the feature-cache path).

    Checks: one run folder, complete, metrics once; final val_acc within ACC_TOLERANCE
    of the single-process run; the feature cache the ranks built (each extracting a share
    of the batches, rank 0 writing) has the same files, bit for bit, as one process's.
    """
    from transfer_core.config import from_dict

    cfg = from_dict(PROBE)
    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path / "cache_single"))
    t0 = time.perf_counter()
    single = run_training(cfg, tmp_path / "single_runs")
    t_single = time.perf_counter() - t0
    assert single.state == "completed", single.message
    n_val = len(prepare(cfg)[0].val)

    ddp_runs = tmp_path / "ddp_runs"
    t0 = time.perf_counter()
    proc = torchrun("train", _write_yaml(tmp_path / "probe.yaml", PROBE), "--runs-dir", ddp_runs,
                    env=_env(TRANSFER_LAB_CACHE=str(tmp_path / "cache_ddp")))
    t_ddp = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert [p for p in ddp_runs.iterdir() if p.is_dir()] == [run_dir]  # one run folder, not one per rank
    run = Run(run_dir)
    _assert_complete(run, 4, n_val)
    assert run.status()["feature_cache"]["extracted"] == ["resnet18/train", "resnet18/val"]
    assert proc.stderr.count("epoch 4:") == 1  # rank 0 alone reports

    acc_single, acc_ddp = single.metrics[-1]["val_acc"], run.metrics()[-1]["val_acc"]
    print(f"\nval_acc single={acc_single:.4f} ddp={acc_ddp:.4f} ({t_single:.1f}s vs {t_ddp:.1f}s)")
    assert acc_ddp > 0.8  # it learned (chance is 0.33)
    assert abs(acc_ddp - acc_single) <= ACC_TOLERANCE

    a, b = _features(tmp_path / "cache_single"), _features(tmp_path / "cache_ddp")
    assert list(a) == list(b) and len(a) == 2  # same keys: train and val of resnet18
    for name in a:
        assert a[name]["key"] == b[name]["key"]
        assert torch.equal(a[name]["labels"], b[name]["labels"])
        assert torch.equal(a[name]["features"], b[name]["features"]), name  # same batches -> same numbers


@pytest.mark.slow
def test_launcher_stop_ends_the_process_group_then_resume_under_torchrun(tmp_path, runs_root):
    """The dashboard's launcher (2 gloo ranks through the images path: layer3/4 train under
    DDP), stopped after its first epoch: every process ends, the run is "stopped" with its
    checkpoint; ``torchrun ... resume`` then finishes it with every epoch written once."""
    cfg = tiny_config(
        backbones=[{"name": "resnet18", "weights": "none", "freeze": 3}],
        data__train_per_class=20,
        train__epochs=4,
        train__threads=1,
    )
    run = RunStore(runs_root).create(cfg, state="queued")
    ln = distributed.launch(run.dir, 2, backend="gloo", master_port=_free_port(), env={"OMP_NUM_THREADS": "1"})
    end = time.monotonic() + 240
    while not run.metrics() and ln.poll() is None and time.monotonic() < end:
        time.sleep(0.1)
    assert run.metrics() and ln.poll() is None, ln.log_tail()[-3000:]
    ranks = _children(ln.pid)
    assert len([p for p in ranks if _is_python(p)]) >= 2  # torchrun's agent runs the two ranks
    ln.stop()
    st = ln.finish()
    assert st["state"] == "stopped", (st, ln.log_tail()[-3000:])
    for pid in [ln.pid, *ranks]:  # the agent and every rank are gone
        assert not _alive(pid), pid
    done = len(run.metrics())
    assert 1 <= done < 4
    assert load_checkpoint(run.checkpoint_path)["epoch"] == done

    proc = torchrun("resume", run.dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Path(proc.stdout.strip().splitlines()[-1]) == run.dir
    _assert_complete(run, 4, len(prepare(cfg)[0].val))
    assert run.status()["message"].startswith("finished 4 epochs")


@pytest.mark.slow
def test_dashboard_resume_of_a_ddp_run_runs_under_torchrun_again(runs_root):
    """Through the job manager (what the Results page's Resume calls): a 2-rank gloo run
    stopped after an epoch resumes as a 2-rank torchrun job, not in the server's own
    thread, and finishes with every epoch written once."""
    cfg = tiny_config(
        backbones=[{"name": "resnet18", "weights": "none", "freeze": 3}],
        data__train_per_class=20,
        train__epochs=4,
        train__threads=1,
    )
    jm = JobManager(runs_root, threads=1)
    try:
        rid = jm.submit(cfg, nproc=2, backend="gloo")
        run = Run(runs_root / rid)
        end = time.monotonic() + 240
        while not run.metrics() and jm.is_active(rid) and time.monotonic() < end:
            time.sleep(0.1)
        assert run.metrics() and jm.is_active(rid), (run.raw_status(), (run.dir / "launch.log").read_text()[-3000:])
        assert run.raw_status()["world_size"] == 2 and run.raw_status()["dist_backend"] == "gloo"
        assert jm.stop(rid) and jm.wait(rid, timeout=120)
        assert run.status()["state"] == "stopped", run.status()
        done = len(run.metrics())
        assert 1 <= done < 4

        jm.resume(rid)
        job = jm._jobs[rid]
        assert (job.nproc, job.backend, job.resume) == (2, "gloo", True)
        assert "under torchrun with 2 processes" in run.raw_status()["message"]
        assert jm.wait(rid, timeout=300), "the resumed run did not end"
    finally:
        jm.shutdown()
    _assert_complete(run, 4, len(prepare(cfg)[0].val))
    assert run.raw_status()["world_size"] == 2  # rank 0 of the resumed job wrote it (one process writes 1)


@pytest.mark.slow
def test_compile_under_ddp_compiles_the_ddp_wrapper_and_trains_like_eager(tmp_path):
    """``train.compile`` under torchrun: the DDP-wrapped training forward and the eval
    forward are compiled, inductor really compiles (its cache fills), no fallback
    warning, and the first epoch's loss matches the eager DDP run's (same seed,
    same sampler order; compiled kernels round differently, so within 10%)."""
    cfg = {**PROBE, "backbones": [{"name": "resnet18", "weights": "none", "freeze": 3}],
           "data": {**PROBE["data"], "train_per_class": 30},
           "train": {**PROBE["train"], "epochs": 1, "lr": 0.001}}
    config = _write_yaml(tmp_path / "c.yaml", cfg)
    results = {}
    for compiled in (True, False):
        runs = tmp_path / f"runs-{compiled}"
        env = _env(TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"))
        proc = torchrun("train", config, "--runs-dir", runs, "-q", "--dist-backend", "gloo",
                        "--set", f"train.compile={str(compiled).lower()}", env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        run = Run(Path(proc.stdout.strip().splitlines()[-1]))
        assert run.status()["state"] == "completed" and run.status()["world_size"] == 2
        assert not run.status().get("warnings"), run.status()["warnings"]
        results[compiled] = [r["train_loss"] for r in run.metrics()]
        assert run.status()["compiled"] == (["train", "eval"] if compiled else [])  # training goes through it too
        if compiled:
            assert any((tmp_path / "inductor").rglob("*")), "nothing was compiled"
    assert len(results[True]) == len(results[False]) == 1
    assert results[True][0] == pytest.approx(results[False][0], rel=0.1)


def test_resume_plan_follows_how_the_run_last_trained(monkeypatch):
    assert resume_plan({"state": "stopped"}) == (1, "auto", "")  # single-process runs and old runs
    assert resume_plan({"world_size": 1, "dist_backend": None}) == (1, "auto", "")
    assert resume_plan({"world_size": 2, "dist_backend": "gloo"})[:2] == (2, "gloo")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    nproc, backend, note = resume_plan({"world_size": 4, "dist_backend": "nccl"})
    assert (nproc, backend) == (1, "auto") and "4 GPUs; 0 visible" in note
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert resume_plan({"world_size": 4, "dist_backend": "nccl"})[:2] == (4, "nccl")


def test_a_handed_over_run_can_be_claimed_by_the_job_it_was_handed_to(runs_root, monkeypatch):
    """The launcher's handoff: a run queued in this process's name is refused to any
    resume, except one started with this process's token in TRANSFER_LAB_HANDOFF."""
    from transfer_core.config import ConfigError
    from transfer_core.runs import HANDOFF_ENV
    from transfer_core.training import resume_training

    cfg = tiny_config(train__epochs=1)
    run = RunStore(runs_root).create(cfg, state="queued")
    with pytest.raises(ConfigError, match="still queued"):
        resume_training(run.dir, runs_root)
    monkeypatch.setenv(HANDOFF_ENV, "someone-else")
    assert not run.handed_to_me()
    monkeypatch.setenv(HANDOFF_ENV, run.raw_status()["token"])
    assert run.handed_to_me()
    assert resume_training(run.dir, runs_root).state == "completed"


@pytest.mark.slow
def test_failed_launch_and_dead_rank_show_as_failed_runs(tmp_path, runs_root):
    """A launch that cannot start (nccl without a GPU, through the job manager) and a rank
    killed mid-training both end as "failed" runs with a message, nothing left running."""
    cfg = tiny_config(train__epochs=50, train__threads=1, backbones=[{"name": "resnet18", "weights": "none", "freeze": 3}])
    jm = JobManager(runs_root, threads=1)
    try:
        rid = jm.submit(cfg, nproc=2, backend="nccl")
        assert jm.wait(rid, timeout=240)
    finally:
        jm.shutdown()
    st = Run(runs_root / rid).status()
    assert st["state"] == "failed" and "nccl needs CUDA" in st["message"], st
    assert jm.error(rid)

    run = RunStore(runs_root).create(cfg, state="queued")
    ln = distributed.launch(run.dir, 2, backend="gloo", master_port=_free_port(), env={"OMP_NUM_THREADS": "1"})
    end = time.monotonic() + 240
    while time.monotonic() < end and ln.poll() is None and (run.progress() or {}).get("phase") != "train":
        time.sleep(0.1)
    rank0 = run.raw_status().get("pid")
    assert rank0 and rank0 != os.getpid() and ln.poll() is None, ln.log_tail()[-3000:]
    ranks = _children(ln.pid)
    os.kill(rank0, signal.SIGKILL)
    assert ln.wait(timeout=120) not in (None, 0)
    st = ln.finish()
    assert st["state"] == "failed", st
    assert "rank 0" in st["message"] and "SIGKILL" in st["message"], st["message"]
    for pid in [ln.pid, *ranks]:
        assert not _alive(pid), pid


def test_starting_torchrun_imports_no_torch_distributed():
    """The launcher (what the dashboard imports to start a DDP job) pulls in neither
    torch.distributed nor torch itself; the package keeps the rest of its names."""
    code = ("import sys, transfer_core.distributed.launch\n"
            "from transfer_core.distributed import launch, torchrun_command, Launch, failure_message\n"
            "assert callable(launch) and launch.__name__ == 'launch'\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
    assert distributed.DistContext.__module__ == "transfer_core.distributed.context"  # the rest on first use


def test_shards_of_every_rank_go_back_into_the_single_process_order():
    """The sharding helpers alone (no process group): feature batches r, r + N, ... and strided
    eval shards padded to equal length both come back as items 0..n-1, each once."""
    from transfer_core.distributed import sampling

    n, bs, world = 23, 4, 3
    shards = []
    for r in range(world):
        idx = torch.tensor(sampling.shard_rows(n, bs, r, world))
        shards.append(([idx[:, None].float()], idx))
    assert sorted(int(i) for _, y in shards for i in y) == list(range(n))
    feats, labels = sampling.unshard_batches(shards, n, bs, shards[0])
    assert labels.tolist() == list(range(n)) and feats[0][:, 0].tolist() == list(range(n))
    per = len(range(0, n, world))
    parts = [torch.tensor(list(range(r, n, world)) + [-1] * (per - len(range(r, n, world)))) for r in range(world)]
    assert sampling.interleave(parts, n).tolist() == list(range(n))
    assert [len(sampling.make_sampler(range(n), False, 0, 0, r, world)) for r in range(world)] == [8, 8, 7]


def test_failure_message_reads_the_cli_error_or_the_dead_rank():
    assert distributed.failure_message("noise\nerror: data.dataset: no such dataset\nmore", 1) == "data.dataset: no such dataset"
    summary = ("Failures:\n[1]:\n  rank      : 0 (local_rank: 0)\n  exitcode  : 1 (pid: 13)\n"
               "Root Cause (first observed failure):\n[0]:\n  time      : 2026\n  host      : h\n"
               "  rank      : 1 (local_rank: 1)\n  exitcode  : -9 (pid: 12)\n")
    assert distributed.failure_message(summary, 1).startswith("rank 1 was killed by SIGKILL")
    assert "code 3" in distributed.failure_message("", 3)
    crashed = ("error: CUDA out of memory\nerror: RuntimeError: Connection closed by peer\nRoot Cause\n"
               "  rank      : 1 (local_rank: 1)\n  exitcode  : 1 (pid: 12)\n")
    assert distributed.failure_message(crashed, 1).startswith("rank 1 exited with code 1: CUDA out of memory")


def test_train_page_offers_use_n_gpus_and_submits_n_processes(monkeypatch):
    """With 2 GPUs visible the Train page shows "Use 2 GPUs"; Start then asks for 2 processes."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    submitted: list[int] = []

    def fake_submit(self, cfg, nproc=1, backend="auto"):
        submitted.append(nproc)
        return self.store.create(cfg, state="queued").id

    st.cache_resource.clear()
    monkeypatch.setattr(JobManager, "submit", fake_submit)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["draft_data"] = {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 15, "image_size": 32}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [t for t in at.toggle if t.key == "use_gpus"]  # one GPU (here: none): no control

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    toggle = at.toggle(key="use_gpus")
    assert toggle.label == "Use 2 GPUs"
    toggle.set_value(True)
    at.button(key="start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert submitted == [2]
    st.cache_resource.clear()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _is_python(pid: int) -> bool:
    try:
        return "transfer_core" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


def test_head_warm_up_under_torchrun_unfreezes_on_every_rank(tmp_path):
    """train.head_epochs under DDP: the warm-up trains on cached features, then every rank
    unfreezes at the same epoch (a new DDP wrapper over the unfrozen model) and the run completes."""
    cfg = {**PROBE, "backbones": [{"name": "resnet18", "weights": "none", "freeze": 3}],
           "train": {**PROBE["train"], "epochs": 2, "head_epochs": 1}}
    runs = tmp_path / "runs"
    proc = torchrun("train", _write_yaml(tmp_path / "warm.yaml", cfg), "--runs-dir", runs,
                    env=_env(TRANSFER_LAB_CACHE=str(tmp_path / "cache")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = Run(Path(proc.stdout.strip().splitlines()[-1]))
    assert run.status()["state"] == "completed"
    assert [r["phase"] for r in run.metrics()] == ["head", "body"]
    assert run.status()["feature_cache"]["head_warm_up"]["used"]
