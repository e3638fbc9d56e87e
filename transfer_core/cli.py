"""Headless command line: ``python -m transfer_core <command>``.

Exit codes: 0 success; 1 the run failed (diverged, crashed); 2 bad input (config,
data, weights, unknown run) with one ``error: ...`` line on stderr and no traceback;
130 stopped with Ctrl-C (the run closes as "stopped" with its last checkpoint).
The last line a successful ``train`` prints on stdout is the run folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_STOPPED = 0, 1, 2, 130


class _InputError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def _worker_rank() -> bool:
    """A torchrun rank other than 0: it keeps quiet (rank 0 speaks for the run)."""
    return os.environ.get("RANK", "0") != "0" and "LOCAL_RANK" in os.environ


def _err(msg: str, every_rank: bool = False) -> None:
    """One ``error:`` line; under torchrun only rank 0's, unless every rank failed on its own."""
    if every_rank or not _worker_rank():
        print(f"error: {msg}", file=sys.stderr)


def _with_sigint(fn, distributed: bool = False):
    """Run ``fn(stop_event)`` with Ctrl-C turned into a clean stop at the next batch.

    Under torchrun SIGTERM stops cleanly too (the dashboard's Stop, torchrun passing a
    signal on), and a repeat within 2 s is torchrun forwarding the same signal, not a
    second Ctrl-C.
    """
    stop = threading.Event()
    first: list[float] = []
    sigs = (signal.SIGINT, signal.SIGTERM) if distributed else (signal.SIGINT,)
    old = {s: signal.getsignal(s) for s in sigs}

    def handler(signum, frame):  # noqa: ARG001
        if stop.is_set():
            if signum == signal.SIGINT and not (distributed and time.monotonic() - first[0] < 2.0):
                raise KeyboardInterrupt
            return
        first.append(time.monotonic())
        if not _worker_rank():
            print("\nstopping at the next batch (Ctrl-C again to abort)...", file=sys.stderr, flush=True)
        stop.set()

    try:
        for s in sigs:
            signal.signal(s, handler)
    except ValueError:  # not the main thread
        pass
    try:
        return fn(stop)
    finally:
        try:
            for s, h in old.items():
                signal.signal(s, h)
        except ValueError:
            pass


def _finish(result) -> int:
    if result.run is not None and not _worker_rank():
        print(f"{result.state}: {result.message}", file=sys.stderr)
        print(result.run.dir)
    if result.state == "completed":
        return EXIT_OK
    if result.state == "stopped":
        return EXIT_STOPPED
    _err(result.message, every_rank=True)  # under torchrun: a failing rank > 0 must say why too
    return EXIT_FAILED


def _dist_init(args: argparse.Namespace, device_pref: str):
    """Under torchrun: join the process group (see transfer_core.distributed); else None."""
    from . import distributed

    if not distributed.launched():  # the usual case: torch.distributed is never imported (1.5 s)
        return None
    return distributed.init_from_env(device_pref, args.dist_backend)


def cmd_train(args: argparse.Namespace) -> int:
    from .config import load_yaml
    from .runs import RunStore
    from .training import run_training
    from .training.console import EpochPrinter, ProgressBar

    cfg = load_yaml(args.config, args.set)
    run = RunStore(args.runs_dir).get(args.into) if args.into else None
    dist = _dist_init(args, cfg.train.device)
    try:
        result = _with_sigint(
            lambda stop: run_training(
                cfg,
                args.runs_dir,
                run=run,
                stop_event=stop,
                callbacks=[] if args.quiet else [ProgressBar(), EpochPrinter()],
                dist=dist,
            ),
            distributed=dist is not None,
        )
    finally:
        if dist is not None:
            dist.close()
    return _finish(result)


def cmd_resume(args: argparse.Namespace) -> int:
    from .runs import RunStore
    from .training import resume_training
    from .training.console import ProgressBar

    dist = None
    if "LOCAL_RANK" in os.environ:  # torchrun: the backend follows the run's device setting
        dist = _dist_init(args, RunStore(args.runs_dir).get(args.run).config().train.device)
    try:
        result = _with_sigint(
            lambda stop: resume_training(
                args.run, args.runs_dir, stop_event=stop, callbacks=[] if args.quiet else [ProgressBar()], dist=dist
            ),
            distributed=dist is not None,
        )
    finally:
        if dist is not None:
            dist.close()
    return _finish(result)


def cmd_runs(args: argparse.Namespace) -> int:
    from .runs import RunStore

    store = RunStore(args.runs_dir)
    rows = store.list()
    if args.json:
        print(json.dumps([{**r.__dict__, "dir": str(r.dir)} for r in rows], indent=1))
        return EXIT_OK
    if not rows:
        print(f"no runs in {store.root}")
        return EXIT_OK
    print(f"{'id':<46} {'state':<11} {'method':<8} {'backbones':<28} {'epochs':>6} {'val_acc':>7}")
    for r in rows:
        acc = f"{r.val_acc:.3f}" if r.val_acc is not None else "-"
        print(f"{r.id:<46} {r.state:<11} {r.method:<8} {'+'.join(r.backbones)[:28]:<28} {r.epochs_done:>3}/{r.epochs:<2} {acc:>7}")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from .data import DataError, load_image
    from .predict import load_run_model, predict_images

    loaded = load_run_model(args.run, args.runs_dir)
    out = []
    for path in args.images:
        try:
            img = load_image(path)
        except DataError as exc:
            raise _InputError(str(exc)) from None
        out.append({"image": str(path), "top": predict_images(loaded, [img], args.top_k)[0]})
    print(json.dumps(out, indent=1))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    path = export_run(args.run, args.format, args.runs_dir)
    print(path)
    return EXIT_OK


def cmd_backbones(args: argparse.Namespace) -> int:
    from .backbones import get_backbone, imagenet_weights_info, list_backbones

    names = list_backbones(curated_only=not args.all)
    print(f"{'name':<24} {'params':>9} {'feat':>6} {'groups':>6}  imagenet")
    for n in names:
        s = get_backbone(n)
        info = imagenet_weights_info(n)
        where = "cached" if info["cached"] else "downloadable"
        print(f"{n:<24} {s.num_params / 1e6:>8.1f}M {s.feature_dim:>6} {len(s.groups):>6}  {where}")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m transfer_core", description="Transfer Lab: transfer learning and fusion, headless.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    sub = p.add_subparsers(dest="command", required=True)

    def runs_dir_arg(sp):
        sp.add_argument("--runs-dir", default=None, help="run store folder (default: $TRANSFER_LAB_RUNS or ./runs)")

    def dist_arg(sp):
        sp.add_argument("--dist-backend", choices=["auto", "gloo", "nccl"], default="auto",
                        help="under torchrun: the process group backend (auto: nccl on GPUs, gloo on the CPU)")

    t = sub.add_parser("train", help="train a run from a YAML config")
    t.add_argument("config")
    runs_dir_arg(t)
    t.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a config value (repeatable)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    t.add_argument("--into", default=None, metavar="RUN_DIR",
                   help="train into this existing, not yet started run folder (the dashboard's launcher uses it)")
    dist_arg(t)
    t.set_defaults(fn=cmd_train)

    r = sub.add_parser("runs", help="list runs")
    runs_dir_arg(r)
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=cmd_runs)

    rs = sub.add_parser("resume", help="continue an interrupted or stopped run from its last checkpoint")
    rs.add_argument("run", help="run folder or id")
    runs_dir_arg(rs)
    rs.add_argument("-q", "--quiet", action="store_true")
    dist_arg(rs)
    rs.set_defaults(fn=cmd_resume)

    pr = sub.add_parser("predict", help="top-k predictions of a run's model, as JSON")
    pr.add_argument("run")
    pr.add_argument("images", nargs="+")
    pr.add_argument("--top-k", type=int, default=3)
    runs_dir_arg(pr)
    pr.set_defaults(fn=cmd_predict)

    ex = sub.add_parser("export", help="export a run's model into its folder")
    ex.add_argument("run")
    ex.add_argument("--format", choices=["torchscript", "onnx"], required=True)
    runs_dir_arg(ex)
    ex.set_defaults(fn=cmd_export)

    from .sweeps.command import add_parser as add_sweep_parser

    add_sweep_parser(sub, runs_dir_arg)

    from .present.command import add_parser as add_present_parser

    add_present_parser(sub, runs_dir_arg)

    b = sub.add_parser("backbones", help="list backbones")
    b.add_argument("--all", action="store_true", help="every torchvision classifier, not only the curated list")
    b.set_defaults(fn=cmd_backbones)
    return p


def _cache_follows_runs_dir(args: argparse.Namespace) -> str | None:
    """With ``--runs-dir DIR`` and no ``$TRANSFER_LAB_CACHE``, the caches go to ``DIR/_cache``, as
    the README's folders table says: the backbone-spec cache, read before any run store is
    known, went to ``./runs/_cache`` instead. Returns the value to restore (None: unset)."""
    runs = getattr(args, "runs_dir", None)
    if not runs or os.environ.get("TRANSFER_LAB_CACHE"):
        return os.environ.get("TRANSFER_LAB_CACHE")
    os.environ["TRANSFER_LAB_CACHE"] = str(Path(runs) / "_cache")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    before = _cache_follows_runs_dir(args)
    try:
        return _main(args)
    finally:  # an in-process caller (tests) gets its environment back
        if before is None:
            os.environ.pop("TRANSFER_LAB_CACHE", None)
        else:
            os.environ["TRANSFER_LAB_CACHE"] = before


def _main(args: argparse.Namespace) -> int:
    from .errors import USER_ERRORS, PeerFailed

    try:
        return args.fn(args)
    except PeerFailed as exc:  # under torchrun: another rank failed to start; rank 0 says why
        _err(str(exc))
        return EXIT_INPUT if exc.user_error else EXIT_FAILED
    except (_InputError, ValueError, FileNotFoundError) as exc:
        if isinstance(exc, USER_ERRORS) or isinstance(exc, (_InputError, FileNotFoundError)) or type(exc) is ValueError:
            # every_rank: an input error under torchrun hits each rank alike, before or without the
            # process group, and torchrun may end rank 0 before it prints when another rank exits first
            _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, every_rank=True)
            return EXIT_INPUT
        raise
    except KeyboardInterrupt:
        _err("aborted")
        return EXIT_STOPPED
