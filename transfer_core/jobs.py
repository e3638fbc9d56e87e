"""Background job manager: one worker thread per device, a queue, a stop event per job.

The dashboard holds one manager per process (``st.cache_resource``), shared by every
browser session, so every method here is thread-safe (one lock around the shared
state). Workers never touch Streamlit: they write the run store and the in-memory
progress below, which pages read.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig, validate
from . import run_messages as msg
from .errors import USER_ERRORS
from .i18n import _
from .runs import Run, RunStore
from .training import ProgressPublisher, gpu_count, run_training, select_device

__all__ = ["Job", "JobManager", "resume_plan", "ui_threads"]

log = logging.getLogger(__name__)


def ui_threads() -> int:
    """Torch threads for training inside the app: leave one core to the web server.

    ``TRANSFER_LAB_TRAIN_THREADS=N`` overrides it (e.g. all cores of a 2-core laptop when
    throughput matters more than a snappy UI).
    """
    env = os.environ.get("TRANSFER_LAB_TRAIN_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    n = os.cpu_count() or 1
    return max(1, n - 1)


def resume_plan(status: dict[str, Any]) -> tuple[int, str, str]:
    """How to resume a run: (processes, backend, a note for its status: English, it is stored;
    :func:`~transfer_core.run_messages.status_text` translates the whole message when shown).

    A run that last trained under torchrun resumes the same way (N ranks, its backend),
    so a multi-GPU run does not come back on one device. Where its GPUs are not all
    visible any more it resumes in one process: the global batch is the same either way
    (each rank takes its share of it), so the continuation is the same training, slower.
    """
    world = int(status.get("world_size") or 1)
    backend = str(status.get("dist_backend") or "gloo")
    if world <= 1:
        return 1, "auto", ""
    if backend == "nccl":
        gpus = gpu_count()
        if gpus < world:
            return 1, "auto", msg.RESUME_ONE_PROCESS.format(world=world, gpus=gpus)[len(msg.QUEUED_TO_RESUME):]
    return world, backend, msg.RESUME_TORCHRUN.format(world=world, backend=backend)[len(msg.QUEUED_TO_RESUME):]


@dataclass
class Job:
    run_id: str
    cfg: RunConfig
    device: str
    resume: bool = False
    state: str = "queued"  # queued | running | done
    submitted: float = field(default_factory=time.time)
    stop_event: threading.Event = field(default_factory=threading.Event)
    progress: dict[str, Any] | None = None
    error: str | None = None  # traceback of an unexpected failure
    nproc: int = 1  # > 1: a torchrun subprocess with this many DDP ranks (transfer_core.distributed.launch)
    backend: str = "auto"  # its process group backend


class _JobProgress(ProgressPublisher):
    """Keeps a job's latest progress in memory (every update; progress.json is throttled)."""

    def __init__(self, lock: threading.Lock, job: Job):
        super().__init__(None)
        self.lock = lock
        self.job = job

    def publish(self, progress: dict[str, Any], force: bool) -> None:
        with self.lock:
            self.job.progress = progress


class JobManager:
    """Queue runs and train them in background threads, one at a time per device."""

    def __init__(self, runs_root: str | Path | None = None, threads: int | None = None):
        self.store = RunStore(runs_root)
        self.threads = threads if threads is not None else ui_threads()
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Job]] = {}
        self._running: dict[str, Job] = {}  # device -> job
        self._jobs: dict[str, Job] = {}  # run id -> job (active and finished this process)
        self._workers: dict[str, threading.Thread] = {}
        self._wake = threading.Condition(self._lock)
        self._closed = False

    # public API -------------------------------------------------------------------
    def submit(self, cfg: RunConfig, nproc: int = 1, backend: str = "auto") -> str:
        """Validate, create the run folder as "queued", enqueue; returns the run id.

        ``nproc`` > 1 runs it as a torchrun subprocess with that many DDP ranks (one per
        GPU), in the same device queue. Raises ConfigError for invalid settings before
        anything is written.
        """
        validate(cfg)
        if nproc < 1:
            raise ValueError(_("nproc must be at least 1, got {nproc}").format(nproc=nproc))
        device = select_device(cfg.train.device).type
        run = self.store.create(cfg, state="queued")
        self._enqueue(Job(run.id, cfg, device, nproc=int(nproc), backend=backend))
        return run.id

    def resume(self, run_ref: str) -> str:
        """Queue an interrupted or stopped run to continue from its last checkpoint."""
        run = self.store.get(run_ref)
        with self._lock:
            job = self._jobs.get(run.id)
            if job is not None and job.state != "done":
                raise ValueError(_("run {run_id} is already {state}").format(run_id=run.id, state=msg.state_label(job.state)))
        st = run.status()
        if st.get("state") in ("running", "queued"):
            raise ValueError(_("run {run_id} is still {state} in another process").format(
                run_id=run.id, state=msg.state_label(st.get("state"))))
        if st.get("state") == "completed":
            raise ValueError(_("run {run_id} is already completed").format(run_id=run.id))
        cfg = run.config()
        device = select_device(cfg.train.device).type
        nproc, backend, note = resume_plan(st)
        run.set_status("queued", msg.QUEUED_TO_RESUME + note)  # stored in English: shown with status_text
        self._enqueue(Job(run.id, cfg, device, resume=True, nproc=nproc, backend=backend))
        return run.id

    def stop(self, run_id: str) -> bool:
        """Stop a running job within one batch, or take a queued one off the queue."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None or job.state == "done":
                return False
            if job.state == "queued":
                self._queues[job.device].remove(job)
                job.state = "done"
                Run(self.store.root / run_id).set_status("stopped", msg.REMOVED_FROM_QUEUE)
                return True
            job.stop_event.set()
            return True

    def jobs(self) -> list[dict[str, Any]]:
        """Running and queued jobs, running first, as plain dicts (safe to hand to a page)."""
        with self._lock:
            out = []
            for dev, job in self._running.items():
                out.append(self._info(job))
            for dev, q in self._queues.items():
                out.extend(self._info(j) for j in q)
            return out

    def is_active(self, run_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(run_id)
            return job is not None and job.state != "done"

    def progress(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(run_id)
            return dict(job.progress) if job is not None and job.progress else None

    def error(self, run_id: str) -> str | None:
        with self._lock:
            job = self._jobs.get(run_id)
            return job.error if job else None

    def wait(self, run_id: str, timeout: float = 60.0) -> bool:
        """Block until the job is done (tests and the CLI use this); False on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.is_active(run_id):
                return True
            time.sleep(0.05)
        return False

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop everything: queued jobs are dropped, running ones stopped at the next batch."""
        with self._lock:
            self._closed = True
            for q in self._queues.values():
                for job in list(q):
                    job.state = "done"
                    Run(self.store.root / job.run_id).set_status("stopped", msg.SERVER_SHUT_DOWN)
                q.clear()
            for job in self._running.values():
                job.stop_event.set()
            self._wake.notify_all()
            workers = list(self._workers.values())
        for w in workers:
            w.join(timeout)

    # internals --------------------------------------------------------------------
    @staticmethod
    def _info(job: Job) -> dict[str, Any]:
        return {
            "run_id": job.run_id,
            "state": job.state,
            "device": job.device,
            "method": job.cfg.method,
            "backbones": [b.name for b in job.cfg.backbones],
            "dataset": job.cfg.data.dataset,
            "progress": dict(job.progress) if job.progress else None,
            "submitted": job.submitted,
            "stopping": job.stop_event.is_set(),
        }

    def _enqueue(self, job: Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError(_("the job manager is shut down"))
            self._jobs[job.run_id] = job
            self._queues.setdefault(job.device, deque()).append(job)
            worker = self._workers.get(job.device)
            if worker is None or not worker.is_alive():
                worker = threading.Thread(target=self._worker, args=(job.device,), name=f"transfer-lab-{job.device}", daemon=True)
                self._workers[job.device] = worker
                worker.start()
            self._wake.notify_all()

    def _worker(self, device: str) -> None:
        if device == "cpu" and self.threads:
            torch.set_num_threads(self.threads)
        while True:
            with self._lock:
                while not self._queues.get(device) and not self._closed:
                    self._wake.wait(timeout=1.0)
                if self._closed and not self._queues.get(device):
                    return
                job = self._queues[device].popleft()
                job.state = "running"
                self._running[device] = job
            try:
                self._run(job)
            finally:
                with self._lock:
                    job.state = "done"
                    self._running.pop(device, None)

    def _run(self, job: Job) -> None:
        run = Run(self.store.root / job.run_id)
        if job.device == "cpu" and self.threads:
            # Per job: a previous run's train.threads must not stick to this worker. Set in
            # this thread, it takes effect here (OpenMP's count is per thread; threads
            # created later inherit it), leaving the server's own threads alone.
            torch.set_num_threads(self.threads)
        if job.nproc > 1:
            self._run_launched(job, run)
            return
        try:
            run.mark_live(True)  # first, so a reader never sees "running" without a live owner
            run.set_status("running", msg.RESUMING if job.resume else "")
            run_training(
                job.cfg, self.store.root, run=run, stop_event=job.stop_event, resume=job.resume,
                callbacks=[_JobProgress(self._lock, job)],
            )
        except USER_ERRORS as exc:
            job.error = str(exc)  # the run folder already says "failed" with this message
        except BaseException as exc:  # never let a worker die silently
            run.mark_live(False)
            job.error = traceback.format_exc()
            log.error("job %s crashed: %s", job.run_id, job.error)
            try:
                if run.raw_status().get("state") not in ("failed", "stopped", "completed"):
                    run.set_status("failed", f"{type(exc).__name__}: {exc}")
            except OSError:
                pass

    def _run_launched(self, job: Job, run: Run) -> None:
        """A DDP job: torchrun in its own session writes the run folder; Stop ends its process group."""
        from .distributed import launch

        run.mark_live(True)  # ours until rank 0 takes the folder over with its own pid
        try:
            run.set_status("running", (msg.RESUMING_TORCHRUN if job.resume else msg.STARTING_TORCHRUN).format(n=job.nproc))
            ln = launch(run.dir, job.nproc, backend=job.backend, resume=job.resume)
        except Exception as exc:  # e.g. no python / torch.distributed to start
            run.mark_live(False)
            job.error = traceback.format_exc()
            run.set_status("failed", msg.TORCHRUN_FAILED.format(error=f"{type(exc).__name__}: {exc}"))
            return
        try:
            ln.wait(stop_event=job.stop_event)
        except BaseException:
            ln.stop(grace_s=5.0)
            raise
        finally:
            st = ln.finish()
            run.mark_live(False)
            if st.get("state") == "failed":
                job.error = st.get("message")
