"""Transfer vs scratch on the guided demo's target task, over seeds and frozen depths.

    .venv/bin/python bench/recipe_table.py                        # the defaults (the recipe), seeds 0-4
    .venv/bin/python bench/recipe_table.py --set train.head_epochs=0 --set train.lr_decay=1.0   # no recipe
    .venv/bin/python bench/recipe_table.py --seeds 0 1 2 --freeze 0 all

The task is examples/target_mnist_5-9_transfer.yaml (mnist5k digits 5-9, 10 labels per
class, resnet18 at 32 px, batch 16, 15 epochs, Adam lr 1e-3: the Train page's defaults),
transferring from examples/source_mnist_0-4.yaml (trained once, here), at every frozen
depth; scratch is examples/target_mnist_5-9_scratch.yaml. Every run is an ordinary run in
one process, as a sweep runs them. Prints validation accuracy (%) per seed, the mean and
the range, and whether transfer beats scratch on the mean at every depth and freeze 0 is
at least as good as freeze all. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _freeze(v: str):
    return v if v == "all" else int(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--freeze", nargs="+", default=["0", "1", "2", "3", "4", "all"])
    p.add_argument("--set", action="append", default=[], help="override for the target runs, e.g. train.lr_decay=0.5")
    p.add_argument("--no-scratch", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="transfer-lab-recipe-"))
    os.environ["TRANSFER_LAB_RUNS"] = str(tmp / "runs")
    os.environ["TRANSFER_LAB_CACHE"] = str(tmp / "cache")
    from transfer_core.config import load_yaml
    from transfer_core.training import run_training

    try:
        t0 = time.perf_counter()
        src = run_training(load_yaml(ROOT / "examples/source_mnist_0-4.yaml"))
        assert src.state == "completed", src.message
        base = load_yaml(ROOT / "examples/target_mnist_5-9_transfer.yaml", args.set)
        scratch_base = load_yaml(ROOT / "examples/target_mnist_5-9_scratch.yaml", args.set)
        table: dict[str, list[float]] = {}
        for f in args.freeze:
            for seed in args.seeds:
                bb = replace(base.backbones[0], weights=f"run:{src.run.id}", freeze=_freeze(f))
                res = run_training(replace(base, seed=seed, backbones=[bb]))
                assert res.state == "completed", res.message
                table.setdefault(f"freeze {f}", []).append(100 * res.metrics[-1]["val_acc"])
            print(f"freeze {f:>3}: " + " / ".join(f"{a:.1f}" for a in table[f"freeze {f}"]), flush=True)
        if not args.no_scratch:
            for seed in args.seeds:
                res = run_training(replace(scratch_base, seed=seed))
                assert res.state == "completed", res.message
                table.setdefault("scratch", []).append(100 * res.metrics[-1]["val_acc"])
        print(f"\nval acc % (final epoch), seeds {args.seeds}; overrides: {args.set or 'none (the defaults)'}")
        print("| setting | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean | range |")
        print("|---|" + "---|" * (len(args.seeds) + 2))
        for k, v in table.items():
            print(f"| {k} | " + " | ".join(f"{a:.1f}" for a in v)
                  + f" | **{statistics.mean(v):.1f}** | {min(v):.1f}–{max(v):.1f} |")
        if "scratch" in table:
            sc = statistics.mean(table["scratch"])
            beats = all(statistics.mean(v) > sc for k, v in table.items() if k != "scratch")
            print(f"transfer beats scratch on the mean at every depth: {beats}")
        if "freeze 0" in table and "freeze all" in table:
            print(f"freeze 0 >= freeze all on the mean: {statistics.mean(table['freeze 0']) >= statistics.mean(table['freeze all'])}")
        print(f"{time.perf_counter() - t0:.0f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
