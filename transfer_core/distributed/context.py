"""This process's place in a torchrun job: joining the process group, and the collectives.

``torchrun --nproc_per_node=N -m transfer_core train CONFIG.yaml`` starts N copies of
the CLI. Each one sees the torchrun environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``); :func:`init_from_env` joins the process group (gloo
on the CPU, nccl on GPUs with rank ``i`` on ``cuda:LOCAL_RANK``) and hands the trainer a
:class:`DistContext`. The trainer, the feature cache and the run lifecycle call it
through a few marked hooks ("DDP hook"); without torchrun ``dist`` is None and the
single-process path is exactly what it was.

- **Gradients.** Training forwards go through ``DistributedDataParallel`` (which
  averages gradients in backward). Per batch, one ``all_reduce`` sums loss, hits, batch
  sizes and a stop flag, so every rank sees the same loss and stops at the same batch.
- **Metrics.** Evaluation predictions are gathered back in their original order, so
  validation metrics and the confusion matrix are over every image exactly once.
- **The run store.** Rank 0 creates (or claims) the run folder and broadcasts its path;
  the other ranks get a :class:`ReadOnlyRun` on it whose writes are no-ops. A failure on
  any rank before training fails them all (:class:`PeerFailed` on the others).
- **Feature cache.** Each rank extracts every N-th batch of the single-process pass; the
  shards are gathered back into order and rank 0 writes the files.

How the data is split is :mod:`.sampling`'s; starting torchrun is :mod:`.launch`'s.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.distributed as tdist
from torch import nn
from torch.utils.data import Dataset, Sampler

from ..errors import ConfigError, PeerFailed
from ..runs import Run, RunStore
from . import sampling
from .launch import launched

__all__ = ["DistContext", "ReadOnlyRun", "init_from_env", "BACKENDS"]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "gloo", "nccl")


def init_from_env(device_pref: str = "auto", backend: str = "auto") -> "DistContext | None":
    """Join torchrun's process group; None when not started by torchrun.

    ``backend`` auto: nccl when the run would use CUDA (``device_pref`` auto or cuda and
    a GPU is visible), else gloo on the CPU. Bad combinations raise ConfigError on every
    rank alike, before any collective, so no rank waits for another.
    """
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


class _FeaturesForward(nn.Module):
    """``model.forward_features`` as a forward, so DDP can wrap a cached-feature run."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.model.forward_features(feats)


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
        return sampling.make_sampler(ds, train, seed, epoch, self.rank, self.world_size)

    def local_batch(self, batch_size: int) -> int:
        """This rank's share of a global batch."""
        return sampling.local_batch(batch_size, self.world_size)

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
        per = max(counts) if counts else 0
        padded = torch.zeros(per, dtype=torch.long, device=self.device)
        padded[: local.numel()] = local.to(self.device, torch.long)
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        tdist.all_gather(parts, padded)
        return sampling.interleave(parts, sum(counts)).cpu()

    # feature cache --------------------------------------------------------------
    def agree_hits(self, hits: list[Any]) -> list[Any]:
        """A cache hit counts only if every rank had it, so all ranks extract the same things."""
        flags = torch.tensor([h is not None for h in hits], dtype=torch.int32, device=self.device)
        if flags.numel():
            tdist.all_reduce(flags, op=tdist.ReduceOp.MIN)
        return [h if bool(f) else None for h, f in zip(hits, flags.tolist())]

    def shard_batches(self, batches: int) -> int:
        """How many of ``batches`` this rank extracts (every N-th, starting at its rank)."""
        return len(sampling.batch_shard(batches, self.rank, self.world_size))

    def extract_features(
        self,
        extract: Callable[..., tuple[list[torch.Tensor], torch.Tensor]],
        bodies: Sequence[nn.Module],
        ds: Any,
        device: torch.device,
        batch_size: int,
        *args: Any,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``extract`` (the feature cache's extract_features) on this rank's batches; gathered back in order.

        Rank r takes batches r, r + N, ... of the single-process pass, so each image is
        computed in the same batch as in one process. Nothing is padded, so nothing is
        duplicated.
        """
        idx = sampling.shard_rows(len(ds), batch_size, self.rank, self.world_size)
        feats, labels = extract(bodies, sampling.Rows(ds, idx), device, batch_size, *args)
        shards = self.all_gather_object(([f.cpu() for f in feats], labels.cpu()))
        return sampling.unshard_batches(shards, len(ds), batch_size, (feats, labels))
