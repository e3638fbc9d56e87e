"""The run store: one folder per run, written atomically, readable by any process.

Layout (part of the headless contract)::

    <runs>/<run id>/config.yaml      full resolved config
                    status.json      {"state", "message", ...} (+ live progress)
                    metrics.jsonl    one JSON object per finished epoch, append-only
                    confusion.json   {"labels": [...], "matrix": [[...]]}
                    per_class.json   per-class precision / recall / F1 / support
                    checkpoint.pt    last saved epoch: plain dict, loadable with weights_only=True
                    best.pt          best val accuracy so far (same format; a hard link)
                    frozen-eN.pt     tensors a fit never changes (a frozen body), written once per
                                     fit; checkpoint.pt names it (see checkpoint_files)

Why files and not memory: the dashboard, the CLI and a restarted server must all see
the same runs, and a crash must never lose more than the epochs since the last
checkpoint (train.checkpoint_every_s; Stop and the end of a run always write one).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .config import RunConfig, dump_yaml, from_dict, parse_yaml_text, runs_dir
from .i18n import _
from .run_messages import INTERRUPTED_QUEUED, INTERRUPTED_RUNNING, MISSING_STATUS
from .runs_io import (
    atomic_link_or_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    json_default,
    read_json,
)

__all__ = [
    "STATES",
    "FINAL_STATES",
    "RunStore",
    "Run",
    "RunSummary",
    "atomic_write_bytes",
    "atomic_link_or_write",
    "atomic_write_text",
    "atomic_write_json",
    "HANDOFF_ENV",
]

log = logging.getLogger(__name__)

STATES = ("queued", "running", "completed", "failed", "stopped", "interrupted")
FINAL_STATES = ("completed", "failed", "stopped", "interrupted")
_HOST = socket.gethostname()


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of a process (guards against pid reuse); None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
        return raw.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    if start is not None:
        now = _proc_start_time(pid)
        if now is not None and now != start:
            return False
    return True


# In-process liveness: run ids whose training thread is alive in *this* process.
_LIVE_IN_PROCESS: set[str] = set()
_PROCESS_TOKEN = uuid.uuid4().hex
#: Set by a launcher for the torchrun job it starts: the token of the process that holds
#: the run, which hands its claim over to that job (see :meth:`Run.handed_to_me`).
HANDOFF_ENV = "TRANSFER_LAB_HANDOFF"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "run"


@dataclass
class RunSummary:
    """One line of a run listing: what a table or ``runs`` needs, nothing heavy."""

    id: str
    dir: Path
    state: str
    message: str
    created: float
    method: str
    dataset: str
    backbones: list[str]
    weights: list[str]
    epochs_done: int
    epochs: int
    val_acc: float | None
    best_val_acc: float | None
    name: str


@functools.lru_cache(maxsize=256)
def _parsed_config(path: str, mtime_ns: int, size: int) -> dict[str, Any]:  # noqa: ARG001 - mtime/size key the cache
    return parse_yaml_text(Path(path).read_text(encoding="utf-8"), path)


class Run:
    """Handle on one run folder. Cheap to create; every read goes to disk."""

    def __init__(self, path: Path):
        self.dir = Path(path)
        self.id = self.dir.name

    # paths ------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def status_path(self) -> Path:
        return self.dir / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def confusion_path(self) -> Path:
        return self.dir / "confusion.json"

    @property
    def per_class_path(self) -> Path:
        return self.dir / "per_class.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def best_path(self) -> Path:
        return self.dir / "best.pt"

    @property
    def progress_path(self) -> Path:
        return self.dir / "progress.json"

    def exists(self) -> bool:
        return self.config_path.exists()

    # config -----------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The run's config as a plain dict (a fresh copy: callers may change it).

        Parsed once per version of the file: every watching tab asks for it on every
        refresh, and YAML parsing was the largest share of the live view's server time.
        """
        p = self.config_path
        st = p.stat()
        return copy.deepcopy(_parsed_config(str(p), st.st_mtime_ns, st.st_size))

    def config(self) -> RunConfig:
        return from_dict(self.config_dict())

    # status -----------------------------------------------------------------
    def raw_status(self) -> dict[str, Any]:
        return read_json(self.status_path) or {"state": "interrupted", "message": MISSING_STATUS}

    def status(self) -> dict[str, Any]:
        """The status, with a dead owner's "running"/"queued" reported as "interrupted".

        Data, like status.json: its message is English; a page shows it with
        :func:`transfer_core.run_messages.status_text`."""
        st = self.raw_status()
        if st.get("state") in ("running", "queued") and not self._owner_alive(st):
            st = dict(st)
            was = st.get("state")
            st["state"] = "interrupted"
            st["message"] = INTERRUPTED_RUNNING if was == "running" else INTERRUPTED_QUEUED
        return st

    def handed_to_me(self) -> bool:
        """The process holding this run started this one to take it over (a torchrun resume
        launched by the dashboard): its token is in :data:`HANDOFF_ENV`."""
        token = os.environ.get(HANDOFF_ENV)
        return bool(token) and token == self.raw_status().get("token")

    def _owner_alive(self, st: dict[str, Any]) -> bool:
        if st.get("token") == _PROCESS_TOKEN:
            # Ours: alive only if the job thread still runs (a dead thread always
            # writes a final state, so this is belt and braces).
            return self.id in _LIVE_IN_PROCESS or st.get("state") == "queued"
        pid = st.get("pid")
        if not isinstance(pid, int) or st.get("host") not in (None, _HOST):
            return st.get("host") not in (None, _HOST)  # another machine: trust it
        return _pid_alive(pid, st.get("pid_start"))

    def set_status(self, state: str, message: str = "", **extra: Any) -> None:
        if state not in STATES:
            raise ValueError(_("unknown run state {state}").format(state=repr(state)))
        old = read_json(self.status_path) or {}
        st = {k: v for k, v in old.items() if k not in ("state", "message")}
        st.update(extra)
        st["state"] = state
        st["message"] = message
        st["updated"] = time.time()
        if state in ("running", "queued"):
            st["pid"] = os.getpid()
            st["pid_start"] = _proc_start_time(os.getpid())
            st["host"] = _HOST
            st["token"] = _PROCESS_TOKEN
        if state == "running" and "started" not in st:
            st["started"] = time.time()
        if state in FINAL_STATES:
            st["ended"] = time.time()
        atomic_write_json(self.status_path, st)

    def mark_live(self, live: bool) -> None:
        """Record that a thread of this process is working on the run (or no longer)."""
        if live:
            _LIVE_IN_PROCESS.add(self.id)
        else:
            _LIVE_IN_PROCESS.discard(self.id)

    # progress (throttled by the writer) --------------------------------------
    def write_progress(self, progress: dict[str, Any]) -> None:
        atomic_write_json(self.progress_path, progress)

    def progress(self) -> dict[str, Any] | None:
        return read_json(self.progress_path)

    # metrics ----------------------------------------------------------------
    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one epoch's metrics; the line is written whole and fsynced."""
        line = json.dumps(row, allow_nan=False, default=json_default) + "\n"
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def metrics(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        try:
            text = self.metrics_path.read_text(encoding="utf-8")
        except OSError:
            return rows
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                log.warning("skipping a torn line in %s", self.metrics_path)
        return rows

    def truncate_metrics(self, last_epoch: int) -> None:
        """Keep only epochs <= last_epoch (used on resume so no epoch appears twice)."""
        rows = [r for r in self.metrics() if int(r.get("epoch", 0)) <= last_epoch]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    # results ----------------------------------------------------------------
    def write_confusion(self, labels: list[str], matrix: list[list[int]]) -> None:
        atomic_write_json(self.confusion_path, {"labels": list(labels), "matrix": matrix})

    def confusion(self) -> dict[str, Any] | None:
        return read_json(self.confusion_path)

    def write_per_class(self, rows: list[dict[str, Any]]) -> None:
        atomic_write_json(self.per_class_path, rows)

    def per_class(self) -> list[dict[str, Any]] | None:
        return read_json(self.per_class_path)

    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.dir / name, obj)

    def read_json(self, name: str) -> Any:
        return read_json(self.dir / name)

    def summary(self) -> RunSummary:
        st = self.status()
        try:
            cfg = self.config_dict()
        except Exception:  # a damaged run still lists
            cfg = {}
        metrics = self.metrics()
        accs = [m.get("val_acc") for m in metrics if m.get("val_acc") is not None]
        bbs = cfg.get("backbones") or []
        return RunSummary(
            id=self.id,
            dir=self.dir,
            state=st.get("state", "interrupted"),
            message=st.get("message", ""),
            created=float(st.get("created", 0) or 0),
            method=str(cfg.get("method", "?")),
            dataset=str((cfg.get("data") or {}).get("dataset", "?")),
            backbones=[str(b.get("name", "?")) for b in bbs if isinstance(b, dict)],
            weights=[str(b.get("weights", "?")) for b in bbs if isinstance(b, dict)],
            epochs_done=len(metrics),
            epochs=int((cfg.get("train") or {}).get("epochs", 0) or 0),
            val_acc=accs[-1] if accs else None,
            best_val_acc=max(accs) if accs else None,
            name=str(cfg.get("name", "") or ""),
        )


class RunStore:
    """All runs under one root folder (``--runs-dir`` > ``$TRANSFER_LAB_RUNS`` > ``./runs``)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = runs_dir(root)

    def create(self, cfg: RunConfig, state: str = "queued") -> Run:
        """Make a new run folder with its config and an initial status."""
        self.root.mkdir(parents=True, exist_ok=True)
        label = cfg.name or f"{cfg.method}-{'+'.join(b.name for b in cfg.backbones)}"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for _attempt in range(100):
            rid = f"{stamp}-{_slug(label)}-{uuid.uuid4().hex[:4]}"
            path = self.root / rid
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover
            raise RuntimeError(_("could not allocate a run folder"))
        run = Run(path)
        atomic_write_text(run.config_path, dump_yaml(cfg))
        atomic_write_json(run.status_path, {"state": state, "message": "", "created": time.time()})
        run.set_status(state, "")
        return run

    def get(self, ref: str | os.PathLike) -> Run:
        """A run by id (folder name under the root) or by path; ValueError if none."""
        ref_s = str(ref).strip()
        if ref_s.startswith("run:"):
            ref_s = ref_s[4:]
        candidates = [Path(ref_s)] if (os.sep in ref_s or Path(ref_s).is_absolute()) else []
        candidates.append(self.root / ref_s)
        candidates.append(Path(ref_s))
        for c in candidates:
            if (c / "config.yaml").is_file():
                return Run(c)
        # unique id prefix
        if self.root.is_dir() and ref_s and os.sep not in ref_s:
            matches = [p for p in self.root.iterdir() if p.name.startswith(ref_s) and (p / "config.yaml").is_file()]
            if len(matches) == 1:
                return Run(matches[0])
            if len(matches) > 1:
                raise ValueError(_("run '{ref}' is ambiguous: {n} runs start with it").format(ref=ref_s, n=len(matches)))
            # by name: the newest completed run whose config says ``name: <ref>``
            named = [r for r in self.runs() if r.summary().name == ref_s]
            done = [r for r in named if r.status().get("state") == "completed"]
            if done or named:
                return (done or named)[0]
        raise ValueError(_("no run '{ref}' in {root}").format(ref=ref_s, root=self.root))

    def runs(self) -> list[Run]:
        if not self.root.is_dir():
            return []
        out = [Run(p) for p in self.root.iterdir() if p.is_dir() and (p / "config.yaml").is_file()]
        out.sort(key=lambda r: r.id, reverse=True)
        return out

    def list(self) -> list[RunSummary]:
        """Summaries, newest first."""
        return [r.summary() for r in self.runs()]

    def finished(self, states: Iterable[str] = ("completed",)) -> list[RunSummary]:
        wanted = set(states)
        return [s for s in self.list() if s.state in wanted]
