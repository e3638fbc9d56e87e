"""Starting ``torchrun`` from the dashboard, stopping its process group, and reading its end.

:func:`launch` starts ``torchrun`` as a subprocess in its own session, training into an
existing run folder (``resume``: continuing it, with the run's claim handed over through
:data:`~transfer_core.runs.HANDOFF_ENV`); :class:`Launch` stops the whole process tree
and turns a failed launch or a dead rank into a failed run with its message
(:func:`failure_message`). Starting a job needs no torch: this module imports neither
torch nor ``torch.distributed``, so the server that launches stays light.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..runs import FINAL_STATES, HANDOFF_ENV, Run

__all__ = ["Launch", "launch", "launched", "torchrun_command", "failure_message"]

_TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """True in a process started by torchrun (its rendezvous variables are set). No torch needed."""
    return all(k in os.environ for k in _TORCHRUN_ENV)

log = logging.getLogger(__name__)


def torchrun_command(
    run_dir: str | os.PathLike,
    nproc: int,
    backend: str = "auto",
    master_port: int | None = None,
    python: str | None = None,
    resume: bool = False,
) -> list[str]:
    """The ``torchrun`` command that trains into the existing run folder ``run_dir``
    (``resume``: continues it from its last checkpoint)."""
    run_dir = Path(run_dir)
    rdzv = [f"--master_port={master_port}"] if master_port else ["--standalone"]
    what = ["resume", str(run_dir)] if resume else ["train", str(run_dir / "config.yaml"), "--into", str(run_dir)]
    return [
        python or sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={int(nproc)}", *rdzv,
        "-m", "transfer_core", *what, "--runs-dir", str(run_dir.parent), "--dist-backend", backend,
    ]


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux /proc; empty elsewhere)."""
    parents: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                ppid = int(fh.read().decode("ascii", "replace").rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for c in parents.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


class Launch:
    """A running ``torchrun`` job (see :func:`launch`)."""

    def __init__(self, proc: subprocess.Popen, run: Run, log_path: Path):
        self.proc = proc
        self.run = run
        self.log_path = log_path
        self.stop_requested = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def stop(self, grace_s: float = 30.0) -> int:
        """Terminate the whole tree: SIGTERM to torchrun's process group (torchrun passes it
        to each rank, which stops at the next batch together and keeps its checkpoint), then
        SIGKILL to every process left, the ranks' own sessions included, after ``grace_s``."""
        self.stop_requested = True
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        leftovers = _children(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGKILL)
        for pid in leftovers:  # ranks run in sessions of their own (torchrun's choice)
            _signal_group(pid, signal.SIGKILL)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return self.proc.wait()

    def wait(self, stop_event: threading.Event | None = None, timeout: float | None = None, poll_s: float = 0.2) -> int | None:
        """Wait for the end (or ``timeout``); a set ``stop_event`` stops the job. Returns the exit code."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.proc.poll() is None:
            if stop_event is not None and stop_event.is_set():
                return self.stop()
            if end is not None and time.monotonic() >= end:
                return None
            time.sleep(poll_s)
        return self.proc.returncode

    def log_tail(self, chars: int = 20000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - chars))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def finish(self) -> dict[str, Any]:
        """After the exit: make the run folder tell what happened; returns its final status.

        A stop asked for ends "stopped" (unless it completed first). Otherwise a non-zero
        exit that rank 0 did not already record as "failed" (a failed launch, a rank killed
        or crashed) becomes "failed" with the message found in the log.
        """
        rc = self.proc.wait()
        st = self.run.raw_status()
        state = st.get("state")
        if self.stop_requested:
            if state not in ("stopped", "completed"):
                done = len(self.run.metrics())
                self.run.set_status(
                    "stopped",
                    "stopped by the user: the torchrun process group was terminated"
                    + (f"; checkpoint of epoch {done} kept" if done else ""),
                )
        elif rc != 0 and state != "completed":
            log_text = self.log_tail()
            cause = _root_cause(log_text)
            # rank 0's own "failed" message is the best one, unless another rank failed first
            if state != "failed" or (cause is not None and cause[0] != 0):
                self.run.set_status("failed", failure_message(log_text, rc))
        elif rc == 0 and state not in FINAL_STATES:
            self.run.set_status("failed", "torchrun ended without the run recording its end; see launch.log")
        return self.run.raw_status()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b:?.*")


def _root_cause(log_text: str) -> tuple[int, int] | None:
    """``(rank, exit code)`` of torchrun's "Root Cause (first observed failure)" summary."""
    tail = log_text.rsplit("Root Cause", 1)
    if len(tail) < 2:
        return None
    m = re.search(r"rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", tail[1], flags=re.S)
    return (int(m.group(1)), int(m.group(2))) if m else None


def failure_message(log_text: str, rc: int | None) -> str:
    """One line for a failed torchrun job, from its log.

    The rank torchrun saw fail first (killed by which signal, or its exit code), with the
    first ``error:`` line a rank printed (the first is the cause; later ones are usually
    other ranks losing their peer); else that line, else the last exception line.
    """
    lines = [ln.strip() for ln in log_text.splitlines() if ln.strip()]
    first_error = next((ln[len("error: "):] for ln in lines if ln.startswith("error: ")), None)
    exc = next((ln for ln in reversed(lines) if _EXC_LINE.match(ln) and "ChildFailedError" not in ln
                and "SignalException" not in ln), None)
    cause = _root_cause(log_text)
    if cause is not None:
        r, c = cause
        if c < 0 and -c in {s.value for s in signal.Signals}:
            return f"rank {r} was killed by {signal.Signals(-c).name}; see launch.log in the run folder"
        detail = first_error or exc
        return f"rank {r} exited with code {c}" + (f": {detail}" if detail else "") + "; see launch.log in the run folder"
    if first_error or exc:
        return str(first_error or exc)
    return f"torchrun exited with code {rc}; see launch.log in the run folder"


def launch(
    run_dir: str | os.PathLike,
    nproc: int,
    backend: str = "auto",
    master_port: int | None = None,
    env: dict[str, str] | None = None,
    resume: bool = False,
) -> Launch:
    """Start ``torchrun --nproc_per_node=nproc`` training into the existing run folder ``run_dir``.

    The job runs in a session of its own (so a stop reaches all of it and none of the
    caller), with its output in ``<run_dir>/launch.log``. ``backend`` is the process
    group's (auto: nccl on GPUs, gloo on the CPU); ``master_port`` None uses torchrun's
    ``--standalone`` rendezvous on a free local port. ``resume``: continue the run from
    its last checkpoint (``transfer_core resume`` under torchrun).
    """
    run = Run(Path(run_dir))
    if not run.exists():
        raise ValueError(f"no run folder at {run_dir}")
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    full_env = dict(os.environ)
    full_env.update(env or {})
    pkg_root = str(Path(__file__).resolve().parents[2])  # the folder holding transfer_core
    full_env["PYTHONPATH"] = os.pathsep.join([pkg_root, *filter(None, [full_env.get("PYTHONPATH")])])
    if resume:  # the caller holds the run (queued or running in its name): rank 0 may take it over
        full_env[HANDOFF_ENV] = str(run.raw_status().get("token") or "")
    log_path = run.dir / "launch.log"
    with open(log_path, "ab") as fh:
        proc = subprocess.Popen(
            torchrun_command(run.dir, nproc, backend, master_port, resume=resume),
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
        )
    log.info("launched torchrun (pid %d, %d processes) for %s", proc.pid, nproc, run.id)
    return Launch(proc, run, log_path)
