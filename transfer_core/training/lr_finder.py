"""Learning-rate range test (Leslie Smith; the fastai ``lr_find`` recipe).

Train a throw-away copy of the model for a few dozen batches while the learning rate
grows exponentially from ``start_lr`` to ``end_lr``; record the (smoothed) loss. Where
the loss falls fastest is a good learning rate; where it explodes is too high. The
test stops as soon as the smoothed loss exceeds ``diverge`` times its minimum.

Nothing here touches the run store or the model passed in (it is deep-copied), and the
global random state is restored afterwards, so the finder can run beside training.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..config import RunConfig, validate
from ..data import DataBundle
from .device import seed_everything, select_device
from .lifecycle import prepare
from .optimizer import build_optimizer

__all__ = ["find_lr", "suggest_lr", "default_iterations"]

log = logging.getLogger(__name__)


def default_iterations(n_train: int, batch_size: int, max_iter: int = 100, min_iter: int = 30) -> int:
    """About five passes over a small training set, ~100 batches for a larger one."""
    per_epoch = max(1, math.ceil(n_train / max(1, batch_size)))
    return int(min(max_iter, max(min_iter, 5 * per_epoch)))


def suggest_lr(lrs: list[float], losses: list[float]) -> dict[str, float | None]:
    """Steepest descent of the smoothed loss (over log lr) before its minimum; else min / 10.

    Returns ``{"suggested", "steepest", "min_over_10"}``.
    """
    if not lrs:
        return {"suggested": None, "steepest": None, "min_over_10": None}
    loss = np.asarray(losses, dtype=float)
    lr = np.asarray(lrs, dtype=float)
    i_min = int(np.nanargmin(loss))
    min_over_10 = float(max(lr[i_min] / 10.0, lr[0]))
    steepest: float | None = None
    skip = max(1, len(loss) // 10)  # the first points are dominated by the smoothing warm-up
    if i_min - skip >= 3:
        grad = np.gradient(loss, np.log10(lr))
        j = skip + int(np.nanargmin(grad[skip : i_min + 1]))
        if grad[j] < 0:
            steepest = float(lr[j])
    suggested = steepest if steepest is not None else min_over_10
    return {"suggested": float(min(max(suggested, lr[0]), lr[-1])), "steepest": steepest, "min_over_10": min_over_10}


def _optimizer(cfg: RunConfig, model: nn.Module) -> tuple[torch.optim.Optimizer, list[float]]:
    """The run's optimizer over the run's parameter groups; each group's lr as a multiple of the base lr."""
    opt = build_optimizer(cfg, model, 1.0)  # base lr 1: each group's lr is its ratio
    return opt, [float(g["lr"]) for g in opt.param_groups]


def find_lr(
    cfg: RunConfig,
    model: nn.Module | None = None,
    bundle: DataBundle | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int | None = None,
    beta: float = 0.98,
    diverge: float = 4.0,
    runs_root: str | Path | None = None,
    stop_event: threading.Event | None = None,
) -> dict[str, Any]:
    """Run the range test for ``cfg``; returns ``{"lrs", "losses", "suggested", ...}``.

    ``losses`` are the smoothed losses (exponential moving average, bias-corrected),
    ``raw_losses`` the per-batch ones. Without ``model``/``bundle`` they are built from
    ``cfg`` exactly as training would (weights loaded, groups frozen); a given model is
    deep-copied, never changed. Seeded by ``cfg.seed``: the same config gives the same
    curve. Raises the core's user errors (ConfigError, DataError, WeightsError) on bad
    input, before any work.
    """
    if not (0 < start_lr < end_lr) or not math.isfinite(end_lr):
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    validate(cfg)
    py_state, np_state = random.getstate(), np.random.get_state()
    threads = torch.get_num_threads()
    if cfg.train.threads:  # as run_training does; restored below
        torch.set_num_threads(cfg.train.threads)
    with torch.random.fork_rng(devices=[]):
        if model is None or bundle is None:
            b, m = prepare(cfg, runs_root)
            bundle = bundle or b
            model = copy.deepcopy(model) if model is not None else m
        else:
            model = copy.deepcopy(model)
        seed_everything(cfg.seed)
        try:
            return _range_test(cfg, model, bundle, start_lr, end_lr, num_iter, beta, diverge, stop_event)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            torch.set_num_threads(threads)


def _range_test(
    cfg: RunConfig,
    model: nn.Module,
    bundle: DataBundle,
    start_lr: float,
    end_lr: float,
    num_iter: int | None,
    beta: float,
    diverge: float,
    stop_event: threading.Event | None,
) -> dict[str, Any]:
    device = select_device(cfg.train.device)
    model.to(device).train()
    opt, ratios = _optimizer(cfg, model)
    n_train = len(bundle.train)
    bs = max(1, min(cfg.train.batch_size, n_train))
    n_iter = int(num_iter) if num_iter else default_iterations(n_train, bs)
    n_iter = max(2, n_iter)
    gen = torch.Generator().manual_seed(cfg.seed)
    drop_last = n_train > bs and n_train % bs == 1  # a batch of one breaks BatchNorm in train mode
    loader = DataLoader(bundle.train, batch_size=bs, shuffle=True, generator=gen, drop_last=drop_last, num_workers=0)
    use_amp = device.type == "cuda" and cfg.train.amp and torch.cuda.is_bf16_supported()
    mult = (end_lr / start_lr) ** (1.0 / (n_iter - 1))

    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    avg, best = 0.0, math.inf
    stopped_early = False
    it = 0
    batches = iter(loader)
    while it < n_iter:
        if stop_event is not None and stop_event.is_set():
            stopped_early = True
            break
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            continue
        lr = start_lr * mult**it
        for g, r in zip(opt.param_groups, ratios):
            g["lr"] = lr * r
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = F.cross_entropy(model(x).float(), y)
        lv = float(loss.detach())
        if not math.isfinite(lv):
            stopped_early = True
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        avg = beta * avg + (1 - beta) * lv
        sm = avg / (1 - beta ** (it + 1))
        lrs.append(lr)
        raw.append(lv)
        smooth.append(sm)
        best = min(best, sm)
        it += 1
        if it > 1 and sm > diverge * best:
            stopped_early = True
            break
    out: dict[str, Any] = {
        "lrs": lrs,
        "losses": smooth,
        "raw_losses": raw,
        "iterations": len(lrs),
        "planned_iterations": n_iter,
        "stopped_early": stopped_early,
        "batch_size": bs,
    }
    out.update(suggest_lr(lrs, smooth))
    log.info("lr finder: %d iterations, suggested lr %s", len(lrs), out["suggested"])
    return out
