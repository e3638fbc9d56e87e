"""Start a sweep: its folder, the runs it needs first, its workers, and its final tables and state.

``workers`` > 1 starts that many worker processes on this machine (this process is the
first), each with an equal share of the CPU threads, all taking trials from one storage.
More machines join by running the same command with the same ``--storage`` URL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import USER_ERRORS
from ..paths import runs_dir
from . import folder as sweep_folder
from .engine import ensure_before, open_study, refresh, run_worker
from .spec import SweepSpec

__all__ = ["run_sweep", "worker_command"]


def worker_command(path: Path, runs_root: Path, storage: str | None, quiet: bool) -> list[str]:
    cmd = [sys.executable, "-m", "transfer_core", "sweep", "--resume", str(path), "--worker",
           "--runs-dir", str(runs_root), *(["--quiet"] if quiet else [])]
    return cmd + (["--storage", storage] if storage else [])


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def run_sweep(spec: SweepSpec, runs_root: str | os.PathLike | None = None, workers: int = 1,
              storage: str | None = None, stop: threading.Event | None = None,
              on_trial: Callable[[dict[str, Any]], None] | None = None,
              say: Callable[[str], None] = lambda m: None, path: Path | None = None) -> Path:
    """Run (or resume) ``spec`` to the end or to Stop; returns its folder. Raises USER_ERRORS for bad input."""
    root = runs_dir(runs_root)
    path = sweep_folder.init_folder(spec, path or sweep_folder.sweep_dir(spec, root))
    sweep_folder.write_state(path, "running", n_total=spec.n_trials, workers=workers)
    children: list[subprocess.Popen] = []
    try:
        if ensure_before(spec, root, stop, say) is None:
            sweep_folder.write_state(path, "stopped", "stopped while training the runs it needs first",
                                     n_total=spec.n_trials)
            return path
        refresh(spec, path, open_study(spec, path, storage))
        if workers > 1:
            env = {**os.environ, "OMP_NUM_THREADS": str(_threads(workers))}
            quiet = on_trial is None  # the CLI prints trial lines: so do its workers, on the same terminal
            children = [subprocess.Popen(worker_command(path, root, storage, quiet), env=env) for _ in range(workers - 1)]
            import torch

            torch.set_num_threads(_threads(workers))
        run_worker(spec, path, root, storage, stop, on_trial)
        for ch in children:
            if stop is not None and stop.is_set():
                ch.send_signal(signal.SIGINT)
            ch.wait()
        rows = refresh(spec, path, open_study(spec, path, storage))
    except USER_ERRORS as exc:
        sweep_folder.write_state(path, "failed", str(exc), n_total=spec.n_trials)
        raise
    except BaseException:
        sweep_folder.write_state(path, "stopped", "interrupted", n_total=spec.n_trials)
        raise
    finally:
        for ch in children:
            if ch.poll() is None:
                ch.send_signal(signal.SIGINT)
                try:
                    ch.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    ch.kill()
    finished = sum(1 for r in rows if r["state"] in ("completed", "failed"))
    if finished == len(rows):
        sweep_folder.write_state(path, "completed", f"{finished} trials", n_total=spec.n_trials)
    else:
        why = "stopped" if stop is not None and stop.is_set() else "not all trials finished (held by other workers?)"
        sweep_folder.write_state(path, "stopped", f"{finished} of {len(rows)} trials finished; {why}",
                                 n_total=spec.n_trials)
    return path
