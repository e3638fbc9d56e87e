"""A sweep in a background thread of this process (the app): start, stop, and what went wrong.

One sweep at a time: trials on two cores in parallel would only slow each other. The
thread never touches the UI; the page polls the sweep folder (:func:`~.folder.read_results`).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from ..errors import USER_ERRORS
from ..paths import runs_dir
from . import folder as sweep_folder
from .spec import SweepSpec

__all__ = ["SweepJobs"]

log = logging.getLogger(__name__)


class SweepJobs:
    def __init__(self, runs_root: str | os.PathLike | None = None):
        self.root = runs_dir(runs_root)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._path: Path | None = None
        self._error: str | None = None

    def start(self, spec: SweepSpec) -> Path:
        """Run or resume ``spec`` in the background; its folder. RuntimeError while another sweep runs."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError(f"a sweep is running already ({self._path.name if self._path else '?'}): stop it first")
            path = sweep_folder.init_folder(spec, sweep_folder.sweep_dir(spec, self.root))
            sweep_folder.write_state(path, "running", "starting", n_total=spec.n_trials)
            self._stop = threading.Event()
            self._path, self._error = path, None
            self._thread = threading.Thread(target=self._run, args=(spec, path, self._stop), name="sweep", daemon=True)
            self._thread.start()
            return path

    def _run(self, spec: SweepSpec, path: Path, stop: threading.Event) -> None:
        from .launcher import run_sweep

        try:
            run_sweep(spec, self.root, stop=stop, path=path)
        except USER_ERRORS as exc:
            self._error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: keep the message for the page, the traceback for the log
            log.exception("sweep %s failed", path.name)
            self._error = f"{type(exc).__name__}: {exc}"
            sweep_folder.write_state(path, "failed", self._error, n_total=spec.n_trials)

    def stop(self) -> None:
        self._stop.set()

    def active(self) -> Path | None:
        t = self._thread
        return self._path if t is not None and t.is_alive() else None

    def last(self) -> Path | None:
        return self._path

    def error(self) -> str | None:
        return self._error

    def wait(self, timeout: float = 60.0) -> bool:
        t = self._thread
        if t is None:
            return True
        t.join(timeout)
        return not t.is_alive()

    def shutdown(self, timeout: float = 10.0) -> None:
        self.stop()
        self.wait(timeout)
