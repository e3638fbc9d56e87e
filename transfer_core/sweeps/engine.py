"""Run a sweep: an Optuna study whose trials are ordinary runs, taken by one or more workers.

Optuna is the engine (the field's standard): its :class:`~optuna.samplers.GridSampler`
for the axes (trial *k* of the first *n* gets grid cell *k*, so workers sharing one
storage never draw the same cell), its TPE sampler for a ``search``, and its storage —
by default a journal file in the sweep folder (nothing to start), or any database URL
(``--storage postgresql://…``) shared by processes on several machines.

Crash safety is per trial and per run: a worker records who holds a trial (host, pid,
a heartbeat) and the run folder it trains into; a trial whose holder is gone (kill -9,
a closed laptop, Stop) is taken over by the next worker that looks, which *resumes* its
run folder — a completed run is never trained twice and no trial gets a second folder.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..runs import Run, RunStore, _pid_alive, _proc_start_time
from . import folder as sweep_folder
from .spec import SweepSpec

__all__ = ["run_worker", "open_study", "ensure_before", "reusable_before", "trial_rows", "refresh", "GRACE_ENV"]

log = logging.getLogger(__name__)

GRACE_ENV = "TRANSFER_LAB_SWEEP_GRACE_S"  # a holder silent this long (other machine) has lost its trial
BEAT_S = 20.0
_TOKEN = uuid.uuid4().hex  # this process
_ACTIVE: set[tuple[str, int]] = set()  # (study name, trial number) held by a thread of this process
_ACTIVE_LOCK = threading.Lock()


def _grace_s() -> float:
    return float(os.environ.get(GRACE_ENV) or 300)


# --------------------------------------------------------------------------- the study


def open_study(spec: SweepSpec, path: Path, storage: str | None = None):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage:
        store: Any = storage
        if "://" not in storage:  # not a database URL: a journal file path
            store = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    else:
        store = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path / "optuna.journal")))
    if spec.is_search:
        sampler: Any = optuna.samplers.TPESampler(seed=0)
    else:
        sampler = _grid_sampler(optuna)({**spec.axis_labels(), "seed": list(spec.seeds)}, seed=0)
    return optuna.create_study(study_name=path.name, storage=store, sampler=sampler, direction="maximize",
                               load_if_exists=True)


def _grid_sampler(optuna: Any) -> type:
    class Grid(optuna.samplers.GridSampler):
        """GridSampler without its end-of-grid ``study.stop()``: that is for ``optimize`` loops, and
        our ask-and-tell workers stop by themselves when no cell is left (``_claim``)."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return Grid


def _n_study_trials(spec: SweepSpec) -> int:
    return spec.n_search if spec.is_search else spec.n_trials


def _suggest(trial: Any, spec: SweepSpec) -> tuple[dict[str, Any], list[int], dict[str, Any]]:
    """(point, seeds, sampled params) of an Optuna trial; asking again returns what it drew."""
    point = {a: trial.suggest_categorical(a, labels) for a, labels in spec.axis_labels().items()}
    if not spec.is_search:
        return point, [int(trial.suggest_categorical("seed", list(spec.seeds)))], {}
    params: dict[str, Any] = {}
    for key, dist in spec.search.items():
        kind, args = next(iter(dist.items()))
        if kind == "choice":
            params[key] = trial.suggest_categorical(key, args)
        elif kind == "int":
            params[key] = trial.suggest_int(key, args[0], args[1])
        else:
            params[key] = trial.suggest_float(key, float(args[0]), float(args[1]), log=kind == "log_uniform")
    return point, list(spec.seeds), params


# --------------------------------------------------------------------------- claiming


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _proc_start_time(os.getpid()),
            "token": _TOKEN, "beat": time.time()}


def _stale(study_name: str, t: Any) -> bool:
    o = t.user_attrs.get("owner")
    if not o:  # claimed but never marked (killed within milliseconds): give it the grace period
        started = t.datetime_start.timestamp() if t.datetime_start else 0.0
        return time.time() - started > _grace_s()
    if o.get("released"):
        return True
    if o.get("token") == _TOKEN:  # this process: stale unless one of its threads holds it
        with _ACTIVE_LOCK:
            return (study_name, t.number) not in _ACTIVE
    if o.get("host") == socket.gethostname():
        return not _pid_alive(int(o.get("pid") or 0), o.get("start"))
    return time.time() - float(o.get("beat") or 0) > _grace_s()


@contextlib.contextmanager
def _claim_lock(path: Path):
    """One claimer at a time among this machine's workers (across machines, Optuna's numbering decides)."""
    with open(path / "claim.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _claim(study: Any, spec: SweepSpec, path: Path) -> Any | None:
    """An Optuna trial for this worker: a stale one to take over, else a new one; None when none is left."""
    import optuna
    from optuna.trial import TrialState

    n = _n_study_trials(spec)
    with _claim_lock(path):
        trials = study.get_trials(deepcopy=False)
        trial = None
        for t in trials:
            if t.state == TrialState.RUNNING and t.number < n and _stale(study.study_name, t):
                trial = optuna.Trial(study, t._trial_id)
                break
        if trial is None:
            if len([t for t in trials if t.number < n]) >= n:
                return None
            trial = study.ask()
            if trial.number >= n:  # another machine took the last cell first
                study.tell(trial, state=TrialState.FAIL)
                return None
        trial.set_user_attr("owner", _owner())
        with _ACTIVE_LOCK:
            _ACTIVE.add((study.study_name, trial.number))
        return trial


def _release(study: Any, trial: Any) -> None:
    with contextlib.suppress(Exception):  # a finished trial cannot be changed: nothing to release
        trial.set_user_attr("owner", {**_owner(), "released": True})
    with _ACTIVE_LOCK:
        _ACTIVE.discard((study.study_name, trial.number))


class _Heartbeat:
    """Refreshes the holder's heartbeat while a trial trains (other machines judge it by this)."""

    def __init__(self, trial: Any):
        self.trial, self.stop = trial, threading.Event()
        self.thread = threading.Thread(target=self._beat, name="sweep-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(BEAT_S):
            with contextlib.suppress(Exception):
                self.trial.set_user_attr("owner", _owner())

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------- runs


def _run_result(run: Run) -> dict[str, Any]:
    s = run.summary()
    metrics = run.metrics()
    rec = run.read_json("sweep.json") if (run.dir / "sweep.json").is_file() else {}
    return {"run_id": run.id, "state": s.state, "val_acc": s.val_acc, "best_val_acc": s.best_val_acc,
            "train_s": sum(float(m.get("seconds") or 0) for m in metrics), "wall_s": (rec or {}).get("wall_s")}


def _find_run(store: RunStore, sweep_id: str, number: int, seed: int, hint: str | None) -> Run | None:
    """The run folder of one (trial, seed): the id the trial recorded, else a scan of sweep.json records."""
    if hint and Run(store.root / hint).exists():
        return Run(store.root / hint)
    for run in store.runs():
        rec = run.read_json("sweep.json") if (run.dir / "sweep.json").is_file() else None
        if rec and rec.get("sweep") == sweep_id and rec.get("trial") == number and rec.get("seed") == seed:
            return run
    return None


def _train_one(spec: SweepSpec, path: Path, trial: Any, recorded: dict[str, Any], point: dict, seed: int,
               params: dict, store: RunStore, stop: threading.Event | None) -> dict[str, Any]:
    """One (trial, seed) run: ``recorded`` is what the trial's attributes already say of it (a run id
    when an earlier holder created its folder)."""
    from ..training import resume_training, run_training
    from ..recipe import resolve

    key = f"seed{seed}"
    run = _find_run(store, path.name, trial.number, seed, recorded.get("run_id"))
    if run is not None and run.status().get("state") == "completed":
        return _run_result(run)  # finished before its worker could record it: never trained twice
    t0 = time.perf_counter()
    if run is not None:
        result = resume_training(run.id, store.root, stop_event=stop)
        wall = float(run.read_json("sweep.json").get("wall_s") or 0)  # what the interrupted part took
    else:
        cfg = resolve(spec.trial_config(point, seed, params))
        run = store.create(cfg, state="queued")
        run.write_json("sweep.json", {"sweep": path.name, "sweep_dir": str(path), "trial": trial.number,
                                      "seed": seed, "point": point, "params": params})
        trial.set_user_attr(key, {"run_id": run.id})
        result = run_training(cfg, store.root, run=run, stop_event=stop)
        wall = 0.0
    run = result.run or run
    # the whole trial as a user waits for it (data, feature extraction, checkpoints), beside the epochs' train_s
    record = {**run.read_json("sweep.json"), "wall_s": wall + time.perf_counter() - t0}
    run.write_json("sweep.json", record)
    return {**_run_result(run), "state": result.state}


def reusable_before(spec: SweepSpec, store: RunStore) -> list[Run | None]:
    """For each ``before`` config, a completed run with the same resolved config (None: it trains
    first); the run store is read once."""
    if not spec.before:
        return []
    from ..config import from_dict, to_dict
    from ..recipe import resolve

    done = []
    for run in store.runs():  # newest first
        try:
            if run.status().get("state") == "completed":
                done.append((run, run.config_dict()))
        except Exception:  # noqa: BLE001 - a damaged run matches nothing
            continue
    wants = [to_dict(resolve(from_dict(copy.deepcopy(raw)))) for raw in spec.before]
    return [next((run for run, cfg in done if cfg == want), None) for want in wants]


def ensure_before(spec: SweepSpec, runs_root: Path, stop: threading.Event | None = None,
                  say: Callable[[str], None] = lambda m: None) -> list[str] | None:
    """Run ids of the runs a sweep needs first (a completed run of the same config is reused); None on Stop."""
    from ..config import from_dict
    from ..recipe import resolve
    from ..training import run_training

    store = RunStore(runs_root)
    ids = []
    for i, (raw, done) in enumerate(zip(spec.before, reusable_before(spec, store))):
        if done is not None:
            ids.append(done.id)
            continue
        cfg = resolve(from_dict(raw))
        say(f"before.{i}: training {cfg.name or 'a run'} the sweep needs first")
        result = run_training(cfg, store.root, stop_event=stop)
        if result.state == "stopped":
            return None
        if result.state != "completed":
            raise ConfigError(f"before.{i}", f"the run the sweep needs first ended {result.state}: {result.message}")
        ids.append(result.run.id)
    return ids


# --------------------------------------------------------------------------- tables


def trial_rows(spec: SweepSpec, study: Any) -> list[dict[str, Any]]:
    """One row per (trial, seed) run, plus pending rows for the grid cells no trial has drawn yet."""
    from optuna.trial import TrialState

    n = _n_study_trials(spec)
    rows, seen = [], set()
    for t in study.get_trials(deepcopy=False):
        if t.number >= n:
            continue
        point = {a: t.params.get(a) for a in spec.axes}
        params = {p: t.params.get(p) for p in spec.search}
        seeds = [t.params["seed"]] if "seed" in t.params else ([] if not spec.is_search else list(spec.seeds))
        for seed in seeds:
            res = t.user_attrs.get(f"seed{seed}") or {}
            state = res.get("state") or ("running" if t.state == TrialState.RUNNING else "pending")
            if t.state == TrialState.RUNNING and state not in ("completed", "failed"):
                state = "stopped" if (t.user_attrs.get("owner") or {}).get("released") else "running"
            rows.append({"trial": t.number, **point, **params, "seed": seed, "run_id": res.get("run_id"),
                         "state": state, "val_acc": res.get("val_acc"), "best_val_acc": res.get("best_val_acc"),
                         "train_s": res.get("train_s"), "wall_s": res.get("wall_s")})
            seen.add((tuple(str(point[a]) for a in spec.axes), seed))
    if not spec.is_search:
        number = n
        for point in spec.points():
            for seed in spec.seeds:
                if (tuple(str(point[a]) for a in spec.axes), seed) not in seen:
                    rows.append({"trial": number, **point, "seed": seed, "run_id": None, "state": "pending",
                                 "val_acc": None, "best_val_acc": None, "train_s": None, "wall_s": None})
                    number += 1
    return rows


def refresh(spec: SweepSpec, path: Path, study: Any) -> list[dict[str, Any]]:
    rows = trial_rows(spec, study)
    sweep_folder.write_tables(path, spec, rows)
    return rows


# --------------------------------------------------------------------------- a worker


def run_worker(spec: SweepSpec, path: Path, runs_root: Path, storage: str | None = None,
               stop: threading.Event | None = None,
               on_trial: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Take trials from the study until none is left (or Stop); returns how many this worker finished."""
    from optuna.trial import TrialState

    study = open_study(spec, path, storage)
    store = RunStore(runs_root)
    done = 0
    while not (stop is not None and stop.is_set()):
        trial = _claim(study, spec, path)
        if trial is None:
            break
        refresh(spec, path, study)
        point, seeds, params = _suggest(trial, spec)
        results: list[dict[str, Any]] = []
        try:
            with _Heartbeat(trial):
                attrs = study._storage.get_trial(trial._trial_id).user_attrs  # as stored: an adopted trial's run ids
                for seed in seeds:
                    res = _train_one(spec, path, trial, attrs.get(f"seed{seed}") or {}, point, seed, params, store, stop)
                    trial.set_user_attr(f"seed{seed}", res)
                    results.append({**point, **params, "seed": seed, **res})
                    if res["state"] == "stopped":
                        break
        except BaseException:  # a user error, Ctrl-C, a bug: the trial goes back for the next worker
            _release(study, trial)
            raise
        if any(r["state"] == "stopped" for r in results):
            _release(study, trial)
            refresh(spec, path, study)
            break
        accs = [r["val_acc"] for r in results if r["state"] == "completed" and r["val_acc"] is not None]
        if len(accs) == len(seeds):
            study.tell(trial, sum(accs) / len(accs))
        else:
            study.tell(trial, state=TrialState.FAIL)
        with _ACTIVE_LOCK:
            _ACTIVE.discard((study.study_name, trial.number))
        done += 1
        rows = refresh(spec, path, study)
        finished = sum(1 for r in rows if r["state"] in ("completed", "failed"))  # by every worker
        for r in results:
            if on_trial is not None:
                on_trial({"trial": trial.number, **r, "n_done": finished})
    return done
