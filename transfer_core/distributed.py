"""Scale-out on PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

``torchrun --nproc_per_node=N -m transfer_core train CONFIG.yaml`` starts N copies of
the CLI. Each one sees the torchrun environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``), :func:`init_from_env` joins the process group (gloo
on the CPU, nccl on GPUs with rank ``i`` on ``cuda:LOCAL_RANK``) and hands the trainer a
:class:`DistContext`. The trainer, the feature cache and the run lifecycle call it
through a few marked hooks ("DDP hook"); without torchrun ``dist`` is None and the
single-process path is exactly what it was.

What the context does:

- **Data.** Training batches come from a :class:`~torch.utils.data.DistributedSampler`
  seeded with ``cfg.seed`` and ``set_epoch(epoch)``; ``train.batch_size`` stays the
  *global* batch (each rank takes ``ceil(batch_size / N)``), so the learning rate means
  the same as in one process. Evaluation shards the split by stride (no padding) and
  gathers the predictions back in their original order, so validation metrics and the
  confusion matrix are over every image exactly once.
- **Gradients.** Training forwards go through ``DistributedDataParallel`` (which
  averages gradients in backward). Per batch, one ``all_reduce`` sums loss, hits, batch
  sizes and a stop flag, so every rank sees the same loss (divergence check) and stops
  at the same batch.
- **The run store.** Rank 0 creates (or claims) the run folder and broadcasts its path;
  the other ranks get a :class:`ReadOnlyRun` on it whose writes are no-ops, and no
  recorder. One run folder, metrics written once, checkpoints by rank 0 only.
- **Feature cache.** Each rank extracts every N-th batch of the single-process pass
  (same batch boundaries, so the same numbers), the shards are gathered back into order,
  rank 0 writes the files: the cache is the one a single process makes.

:func:`launch` is the dashboard's side: it starts ``torchrun`` as a subprocess in its
own session writing into an existing run folder; :class:`Launch` stops the whole
process tree and turns a failed launch or a dead rank into a failed run with its message.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.distributed as tdist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from .runs import FINAL_STATES, HANDOFF_ENV, Run, RunStore

__all__ = [
    "DistContext",
    "PeerFailed",
    "ReadOnlyRun",
    "launched",
    "init_from_env",
    "Launch",
    "launch",
    "torchrun_command",
    "BACKENDS",
]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "gloo", "nccl")
_TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class PeerFailed(RuntimeError):
    """Another rank failed before training started; that rank reports the error itself."""

    def __init__(self, message: str, user_error: bool = False):
        super().__init__(message)
        self.user_error = user_error


# --------------------------------------------------------------------------- joining


def launched() -> bool:
    """True in a process started by torchrun (its rendezvous variables are set)."""
    return all(k in os.environ for k in _TORCHRUN_ENV)


def init_from_env(device_pref: str = "auto", backend: str = "auto") -> "DistContext | None":
    """Join torchrun's process group; None when not started by torchrun.

    ``backend`` auto: nccl when the run would use CUDA (``device_pref`` auto or cuda and
    a GPU is visible), else gloo on the CPU. Bad combinations raise ConfigError on every
    rank alike, before any collective, so no rank waits for another.
    """
    from .config import ConfigError

    if not launched():
        return None
    if backend not in BACKENDS:
        raise ConfigError("dist.backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    cuda_ok = torch.cuda.is_available()
    if backend == "auto":
        backend = "nccl" if (cuda_ok and device_pref in ("auto", "cuda")) else "gloo"
    if backend == "nccl":
        if not cuda_ok:
            raise ConfigError(
                "dist.backend", "nccl needs CUDA GPUs and none is visible here; on the CPU use --dist-backend gloo"
            )
        n = torch.cuda.device_count()
        if local >= n:
            raise ConfigError(
                "dist.backend",
                f"local rank {local} has no GPU of its own: this machine shows {n}; start torchrun with "
                f"--nproc_per_node={n} or fewer",
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        tdist.init_process_group("nccl", device_id=device)
    else:
        if device_pref == "cuda":
            raise ConfigError("train.device", "cuda with the gloo backend is not supported here: use --dist-backend nccl")
        device = torch.device("cpu")
        tdist.init_process_group("gloo")
    ctx = DistContext(rank=rank, world_size=world, local_rank=local, backend=backend, device=device)
    log.info("rank %d of %d joined (%s on %s)", rank, world, backend, device)
    return ctx


# --------------------------------------------------------------------------- samplers / views


class _Strided(Sampler[int]):
    """Indices ``rank, rank + N, ...``: every item exactly once over the ranks (no padding)."""

    def __init__(self, n: int, rank: int, world: int):
        self.idx = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.idx)

    def __len__(self) -> int:
        return len(self.idx)


def _image_at(ds: Any, idx: Sequence[int], i: int) -> torch.Tensor:
    return ds.image(idx[i])


class _Rows(Dataset):
    """Rows ``idx`` of a dataset, in that order, keeping what ``features.image_batches`` looks for."""

    def __init__(self, ds: Any, idx: Sequence[int]):
        self.ds, self.idx = ds, list(idx)
        t = torch.as_tensor(self.idx, dtype=torch.long)
        images, labels = getattr(ds, "images", None), getattr(ds, "labels", None)
        if isinstance(labels, torch.Tensor):
            self.labels = labels[t]
        if isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor):
            self.images = images[t]
        elif hasattr(ds, "image"):
            self.image = functools.partial(_image_at, ds, self.idx)  # picklable for DataLoader workers

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> Any:
        return self.ds[self.idx[i]]


class _FeaturesForward(nn.Module):
    """``model.forward_features`` as a forward, so DDP can wrap a cached-feature run."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.model.forward_features(feats)


# --------------------------------------------------------------------------- the run store on other ranks


class ReadOnlyRun(Run):
    """Rank > 0's handle on rank 0's run folder: reads work, writes do nothing."""

    def set_status(self, state: str, message: str = "", **extra: Any) -> None:
        pass

    def mark_live(self, live: bool) -> None:
        pass

    def write_progress(self, progress: dict[str, Any]) -> None:
        pass

    def append_metrics(self, row: dict[str, Any]) -> None:
        pass

    def truncate_metrics(self, last_epoch: int) -> None:
        pass

    def write_confusion(self, labels: list[str], matrix: list[list[int]]) -> None:
        pass

    def write_per_class(self, rows: list[dict[str, Any]]) -> None:
        pass

    def write_json(self, name: str, obj: Any) -> None:
        pass


# --------------------------------------------------------------------------- context


@dataclass
class DistContext:
    """This process's place in the torchrun job, and the collectives the core needs."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        if tdist.is_initialized():
            tdist.destroy_process_group()

    # objects --------------------------------------------------------------------
    def all_gather_object(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        tdist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        box = [obj if self.is_main else None]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        tdist.barrier()

    # run lifecycle --------------------------------------------------------------
    def _agree(self, error: BaseException | None, user_errors: tuple[type, ...]) -> None:
        """Raise on every rank if any rank failed (rank 0 re-raises its own error)."""
        mine = None if error is None else (self.rank, f"{type(error).__name__}: {error}", str(error), isinstance(error, user_errors))
        failed = [o for o in self.all_gather_object(mine) if o is not None]
        if not failed:
            return
        if error is not None and self.is_main:
            raise error
        r, full, short, user = failed[0]
        raise PeerFailed(f"rank {r} failed: {short if user else full}", user_error=user)

    def follow_main(self, fn: Callable[[], Run], user_errors: tuple[type, ...]) -> Run:
        """Rank 0 runs ``fn`` (it claims a run folder); the others get a read-only handle on it."""
        run: Run | None = None
        error: BaseException | None = None
        if self.is_main:
            try:
                run = fn()
            except Exception as exc:
                error = exc
        self._agree(error, user_errors)
        path = self.broadcast_object(str(run.dir) if run is not None else None)
        return run if self.is_main and run is not None else ReadOnlyRun(Path(path))

    def prepare_run(
        self,
        cfg: Any,
        store: RunStore,
        run: Run | None,
        prepare: Callable[[Any, Path], tuple[Any, nn.Module]],
        user_errors: tuple[type, ...],
    ) -> tuple[Any, nn.Module, Run]:
        """Every rank builds data and model (seeded alike); rank 0 creates or claims the folder.

        A failure on any rank fails all of them before training starts (rank 0 marks a
        given run failed with the message); success gives rank 0's folder to everyone.
        """
        error: BaseException | None = None
        bundle = model = None
        if self.is_main and run is not None:
            run.mark_live(True)
        try:
            bundle, model = prepare(cfg, store.root)
        except Exception as exc:
            error = exc
        try:
            self._agree(error, user_errors)
        except Exception as exc:
            if self.is_main and run is not None:
                msg = str(exc) if (isinstance(exc, user_errors) or isinstance(exc, PeerFailed)) else f"{type(exc).__name__}: {exc}"
                run.set_status("failed", msg)
                run.mark_live(False)
            raise
        if self.is_main and run is None:
            run = store.create(cfg, state="running")
        path = self.broadcast_object(str(run.dir) if self.is_main and run is not None else None)
        if not self.is_main:
            run = ReadOnlyRun(Path(path))
        assert run is not None and bundle is not None and model is not None
        return bundle, model, run

    # training -------------------------------------------------------------------
    def wrap(self, model: nn.Module, features: bool = False) -> nn.Module:
        """The DDP wrapper that training forwards go through (``features``: cached-feature runs)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        module = _FeaturesForward(model) if features else model
        # A learnable alpha is not used by a concat fusion: DDP must be told, or it waits for its gradient.
        unused = getattr(model, "mode", None) == "concat" and bool(getattr(model, "learn_alpha", False))
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(module, device_ids=ids, output_device=ids[0] if ids else None, find_unused_parameters=unused)

    def sampler(self, ds: Dataset, train: bool, seed: int, epoch: int) -> Sampler[int]:
        """Training: DistributedSampler (seeded, reshuffled per epoch, padded to equal shards). Else strided."""
        if not train:
            return _Strided(len(ds), self.rank, self.world_size)  # type: ignore[arg-type]
        s = DistributedSampler(ds, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed, drop_last=False)
        s.set_epoch(epoch)
        return s

    def local_batch(self, batch_size: int) -> int:
        """This rank's share of a global batch."""
        return max(1, math.ceil(batch_size / self.world_size))

    def batch_totals(self, stats: torch.Tensor, n: int, stop: bool) -> tuple[torch.Tensor, int, bool]:
        """``stats`` = [mean loss, hits] of this rank's batch -> the same over every rank, and "anyone stopping"."""
        t = torch.stack([stats[0] * n, stats[1], stats.new_tensor(float(n)), stats.new_tensor(1.0 if stop else 0.0)])
        tdist.all_reduce(t)
        total = int(round(float(t[2])))
        return torch.stack([t[0] / max(total, 1), t[1]]), total, bool(t[3] > 0)

    def gather_eval(self, preds: torch.Tensor, targets: torch.Tensor, loss_sum: float) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Strided shards -> the whole split's predictions and targets in order; the loss summed."""
        loss = torch.tensor([loss_sum], dtype=torch.float64, device=self.device)
        tdist.all_reduce(loss)
        return self._interleave(preds), self._interleave(targets), float(loss.item())

    def _interleave(self, local: torch.Tensor) -> torch.Tensor:
        counts = self.all_gather_object(int(local.numel()))
        n, per = sum(counts), max(counts) if counts else 0
        padded = torch.zeros(per, dtype=torch.long, device=self.device)
        padded[: local.numel()] = local.to(self.device, torch.long)
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        tdist.all_gather(parts, padded)
        # item i of rank r is index r + i * N: stack ranks, read column by column, drop the padding
        return torch.stack(parts).t().reshape(-1)[:n].cpu()

    # feature cache --------------------------------------------------------------
    def agree_hits(self, hits: list[Any]) -> list[Any]:
        """A cache hit counts only if every rank had it, so all ranks extract the same things."""
        flags = torch.tensor([h is not None for h in hits], dtype=torch.int32, device=self.device)
        if flags.numel():
            tdist.all_reduce(flags, op=tdist.ReduceOp.MIN)
        return [h if bool(f) else None for h, f in zip(hits, flags.tolist())]

    def shard_batches(self, batches: int) -> int:
        """How many of ``batches`` this rank extracts (every N-th, starting at its rank)."""
        return len(range(self.rank, batches, self.world_size))

    def extract_features(
        self,
        extract: Callable[..., tuple[list[torch.Tensor], torch.Tensor]],
        bodies: Sequence[nn.Module],
        ds: Any,
        device: torch.device,
        batch_size: int,
        *args: Any,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``extract`` (features.extract_features) on this rank's batches; gathered back in order.

        Rank r takes batches r, r + N, ... of the single-process pass, so each image is
        computed in the same batch as in one process. Nothing is padded, so nothing is
        duplicated.
        """
        n = len(ds)
        batches = math.ceil(n / batch_size) if n else 0
        mine = list(range(self.rank, batches, self.world_size))
        idx = [i for b in mine for i in range(b * batch_size, min((b + 1) * batch_size, n))]
        feats, labels = extract(bodies, _Rows(ds, idx), device, batch_size, *args)
        shards = self.all_gather_object(([f.cpu() for f in feats], labels.cpu()))
        out: list[list[torch.Tensor]] = [[] for _ in bodies]
        ys: list[torch.Tensor] = []
        for b in range(batches):
            r, k = b % self.world_size, b // self.world_size
            size = min(batch_size, n - b * batch_size)
            rows = slice(k * batch_size, k * batch_size + size)
            r_feats, r_labels = shards[r]
            for i in range(len(bodies)):
                out[i].append(r_feats[i][rows])
            ys.append(r_labels[rows])
        got = [torch.cat(o) if o else f[:0] for o, f in zip(out, feats)]
        return got, (torch.cat(ys) if ys else labels[:0])


# --------------------------------------------------------------------------- launching (the dashboard)


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


__all__.append("failure_message")


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
    pkg_root = str(Path(__file__).resolve().parents[1])
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
