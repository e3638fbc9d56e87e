"""A run's life against the run store: validate and prepare, claim a folder, fit, close it.

:func:`run_training` is what the CLI and the dashboard's job manager both call, so a run
behaves the same from either. Bad input raises one of ``USER_ERRORS`` before any folder
is made (or marks a given run failed with the one-line message). The fit's own outcome
(completed, stopped, diverged, out of memory) is written by the callbacks; an unexpected
error closes the run as failed here, keeping its folder. A run found "running" with no
live owner is "interrupted" (see ``runs``) and :func:`resume_training` continues it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from ..config import RunConfig, validate
from ..data import DataBundle, build_data
from ..errors import USER_ERRORS, ConfigError
from ..i18n import _
from ..models import build_model
from ..recipe import resolve
from ..runs import Run, RunStore
from .callbacks import Callback, CheckpointError, MetricsWriter, ProgressPublisher
from .checkpoint import Checkpointer, resume_state
from .device import seed_everything
from .tensorboard import tensorboard_callback
from .trainer import Trainer, TrainResult

if TYPE_CHECKING:  # only a type: the single-process path never imports torch.distributed
    from ..distributed import DistContext

__all__ = ["prepare", "trainer_class", "run_callbacks", "run_training", "resume_training"]

log = logging.getLogger(__name__)


def prepare(cfg: RunConfig, runs_root: str | Path | None = None) -> tuple[DataBundle, nn.Module]:
    """Validate, build data and model. Raises USER_ERRORS for bad input, touching no run folder."""
    validate(cfg)
    seed_everything(cfg.seed)
    distill = cfg.method == "distill"
    bundle = build_data(cfg.data, cfg.seed, unlabeled=distill and cfg.distill.unlabeled)
    if distill:  # the teachers exist, are completed and know these classes: checked before any folder
        from ..distill.teachers import resolve_teachers

        resolve_teachers(cfg, bundle.classes, runs_root)
    seed_everything(cfg.seed)
    model = build_model(cfg, len(bundle.classes), runs_root)
    return bundle, model


def trainer_class(cfg: RunConfig) -> type[Trainer]:
    """The fit loop a method needs: the Trainer's, or the distillation's (teachers' soft targets)."""
    if cfg.method == "distill":
        from ..distill.trainer import DistillTrainer

        return DistillTrainer
    return Trainer


def run_callbacks(run: Run, cfg: RunConfig) -> list[Callback]:
    """What every run records: metrics, checkpoints, progress.json, and TensorBoard where installed."""
    out: list[Callback] = [MetricsWriter(run), Checkpointer(run), ProgressPublisher(run)]
    try:
        tb = tensorboard_callback(run, [b.name for b in cfg.backbones])
    except Exception as exc:  # noqa: BLE001 - a broken tensorboard install is a warning, not a failed run
        log.warning("no TensorBoard logs for run %s: %s", run.id, exc)
        tb = None
    return out + ([tb] if tb is not None else [])


def _claim_prepared(cfg: RunConfig, store: RunStore, run: Run | None) -> tuple[DataBundle, nn.Module, Run]:
    """Prepare, then the run to record into: a new folder, or ``run`` (marked failed if the input is bad)."""
    if run is None:
        bundle, model = prepare(cfg, store.root)
        return bundle, model, store.create(cfg, state="running")
    run.mark_live(True)  # before the slow prepare, so in-process readers never see "interrupted"
    try:
        bundle, model = prepare(cfg, store.root)
    except Exception as exc:
        run.set_status("failed", str(exc) if isinstance(exc, USER_ERRORS) else f"{type(exc).__name__}: {exc}")
        run.mark_live(False)
        raise
    return bundle, model, run


def run_training(
    cfg: RunConfig,
    runs_root: str | Path | None = None,
    run: Run | None = None,
    stop_event: threading.Event | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    dist: DistContext | None = None,
) -> TrainResult:
    """Run one training job end to end against the run store.

    Without ``run``, bad input raises one of ``USER_ERRORS`` before any folder is made.
    With ``run`` (a queued job, or ``resume``), bad input marks that run failed with the
    one-line message and raises it as well. Stop and divergence never raise: they come
    back as the result's state. ``callbacks`` run after the run's own (metrics,
    checkpoints, progress, TensorBoard). ``dist`` (under torchrun, see
    :mod:`transfer_core.distributed`): one DDP rank of the run; rank 0 owns the folder
    and alone runs callbacks.
    """
    store = RunStore(runs_root)
    cfg = resolve(cfg)  # the recipe's values go into the run's config.yaml: what it trained with
    if dist is not None:  # DDP hook: rank 0 creates/claims the folder, the other ranks get a read-only handle
        bundle, model, run = dist.prepare_run(cfg, store, run, prepare, USER_ERRORS)
    else:
        bundle, model, run = _claim_prepared(cfg, store, run)
    run.mark_live(True)
    try:
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        recording = dist is None or dist.is_main  # DDP hook: rank 0 alone records (metrics once, one set of checkpoints)
        trainer = trainer_class(cfg)(
            cfg, model, bundle, device=dist.device if dist is not None else None,
            stop_event=stop_event, runs_root=store.root, dist=dist,
            callbacks=[*run_callbacks(run, cfg), *callbacks] if recording else (),
        )
        if resume:
            resume_state(trainer, run)
        run.write_json("data_info.json", {**bundle.info, "classes": bundle.classes, "preprocessing": bundle.preprocessing})
        run.set_status(
            "running",
            f"epoch {trainer.epoch + 1} of {cfg.train.epochs}" if resume else "",
            device=str(trainer.device),
            warnings=trainer.warnings,
            # how it runs now, so a resume from the dashboard can start it the same way
            compiled=trainer.compiled,
            world_size=dist.world_size if dist is not None else 1,
            head_epochs=trainer.head_epochs,
            dist_backend=dist.backend if dist is not None else None,
        )
        try:
            result = trainer.fit()
        except Exception as exc:  # an unexpected failure: keep the message, never lose the folder
            if isinstance(exc, CheckpointError):  # expected, one line: no traceback on the user's terminal
                log.error("run %s failed: %s", run.id, exc)
            else:
                log.exception("run %s failed", run.id)
            msg = str(exc) if isinstance(exc, CheckpointError) else f"{type(exc).__name__}: {exc}"
            run.set_status("failed", msg)
            return TrainResult("failed", msg, run, run.metrics())
        result.run = run
        result.metrics = run.metrics()
        return result
    finally:
        run.mark_live(False)


def resume_training(
    ref: str | Path,
    runs_root: str | Path | None = None,
    stop_event: threading.Event | None = None,
    callbacks: Sequence[Callback] = (),
    dist: DistContext | None = None,
) -> TrainResult:
    """Continue an interrupted or stopped run from its last checkpoint to its configured epochs."""
    store = RunStore(runs_root)

    def claim() -> Run:
        run = store.get(ref)
        st = run.status()
        if st.get("state") in ("running", "queued") and not run.handed_to_me():
            raise ConfigError("", _("run {run_id} is still {state} in process {pid}").format(
                run_id=run.id, state=st.get("state"), pid=st.get("pid")))
        if st.get("state") == "completed":
            raise ConfigError("", _("run {run_id} is already completed").format(run_id=run.id))
        run.config()  # readable, before claiming it
        run.set_status("running", "resuming")
        return run

    # DDP hook: rank 0 checks and claims the run, the other ranks follow its folder
    run = dist.follow_main(claim, USER_ERRORS) if dist is not None else claim()
    cfg = run.config()
    if cfg.train.head_epochs is None:  # a run from before the head warm-up existed did not have one
        cfg = replace(cfg, train=replace(cfg.train, head_epochs=0))
    return run_training(cfg, store.root, run=run, stop_event=stop_event, resume=True, callbacks=callbacks, dist=dist)
