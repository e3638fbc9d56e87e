"""``python -m transfer_core sweep SWEEP.yaml``: run or resume a sweep from the command line.

Prints one line per finished trial, and the sweep folder as the last line of stdout.
Exit codes as ``train``: 0 done, 2 bad input (one ``error:`` line), 130 stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(sub: Any, runs_dir_arg: Any) -> None:
    sw = sub.add_parser("sweep", help="run a sweep (seeds x settings) and write its tables")
    sw.add_argument("sweep", nargs="?", help="a sweep YAML file")
    runs_dir_arg(sw)
    sw.add_argument("--resume", metavar="SWEEP_DIR", default=None, help="continue the sweep in this folder")
    sw.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    sw.add_argument("--storage", default=None, metavar="URL",
                    help="Optuna storage shared by workers on several machines, e.g. postgresql://user@host/db "
                         "(default: a journal file in the sweep folder)")
    sw.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a child the launcher started
    sw.add_argument("-q", "--quiet", action="store_true", help="no line per trial")
    sw.set_defaults(fn=cmd_sweep)


def _line(row: dict[str, Any], total: int) -> str:
    acc = f"val acc {row['val_acc']:.1%}" if row.get("val_acc") is not None else row.get("state", "?")
    what = ", ".join(f"{k}={v}" for k, v in row.items()
                     if k not in ("trial", "seed", "run_id", "state", "val_acc", "best_val_acc", "train_s", "wall_s", "n_done"))
    return (f"[{row.get('n_done', '?')}/{total}] {what}{', ' if what else ''}seed {row['seed']}: {acc} "
            f"({row.get('wall_s') or 0:.1f} s)")


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..cli import EXIT_OK, EXIT_STOPPED, _InputError, _with_sigint
    from ..errors import ConfigError
    from . import folder as sweep_folder
    from .engine import run_worker
    from .launcher import run_sweep
    from .spec import load_sweep

    if bool(args.sweep) == bool(args.resume):
        raise _InputError("give a sweep YAML file, or --resume SWEEP_DIR (not both)")
    if args.workers < 1:
        raise ConfigError("--workers", "must be at least 1")
    path = None
    if args.resume:
        path = Path(args.resume)
        if not (path / "sweep.yaml").is_file():
            raise _InputError(f"{path} is not a sweep folder (no sweep.yaml)")
        spec = load_sweep(path / "sweep.yaml")
        root = Path(args.runs_dir) if args.runs_dir else path.parent.parent
    else:
        spec = load_sweep(args.sweep)
        root = args.runs_dir
    total = spec.n_trials

    def on_trial(row: dict[str, Any]) -> None:
        if not args.quiet:
            print(_line(row, total), flush=True)

    if args.worker:  # a child of a launcher: take trials (its lines go to the launcher's terminal), nothing else
        _with_sigint(lambda stop: run_worker(spec, path, Path(root), args.storage, stop, on_trial))
        return EXIT_OK

    def say(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    if not args.quiet:
        print(f"sweep {spec.name}: {total} trials ({len(spec.seeds)} seeds), {args.workers} worker(s)",
              file=sys.stderr, flush=True)
    out = _with_sigint(lambda stop: run_sweep(spec, root, args.workers, args.storage, stop,
                                              None if args.quiet else on_trial, say, path))
    state = sweep_folder.read_state(out)
    print(f"{state.get('state')}: {state.get('message', '')}", file=sys.stderr)
    print(out)
    return EXIT_STOPPED if state.get("state") == "stopped" else EXIT_OK
