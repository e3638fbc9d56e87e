"""Transfer Lab's trainer against a plain, hand-written PyTorch loop, in one process, on the same data.

    .venv/bin/python bench/bench_train.py            # a) and b), a few minutes on 2 CPU cores
    .venv/bin/python bench/bench_train.py --quick    # smaller sizes, about a minute
    .venv/bin/python bench/bench_train.py --only a   # just one of them

a) Frozen resnet18 linear probe on mnist5k at 32 px (4,000 training / 1,000 validation
   images), 10 epochs. The project's whole run (data set-up, feature extraction,
   validation, checkpoints: ``run_training``) against a plain loop that forwards the
   frozen body every epoch. Cold = empty feature cache; warm = the same run again with
   only the learning rate changed. Goals: >= 4x faster cold, >= 15x warm.
b) One full fine-tuning epoch of resnet18 (every layer trains), same batch size and
   data, validation included on both sides. Goal: project time / plain time <= 1.05.
   The project side is the trainer's fit (fit_start -> fit_end: events, progress file,
   metrics, checkpoint), the plain side a bare loop. Runs alternate and the minimum of
   each side is compared (the least disturbed measurement on a shared machine); the
   median is printed too.

Benchmarks, not tests: nothing here asserts a timing. Runs and the cache go to a
temporary folder, so the cold run is always cold.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- the plain loops


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class PlainInput:
    """uint8 N x C x S x S -> normalised float batches on the device, the obvious way."""

    def __init__(self, device: torch.device, channels_last: bool = False):
        self.device = device
        self.channels_last = channels_last
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            x = x.pin_memory()
        x = x.to(self.device, non_blocking=True).float().div_(255.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def _autocast(device: torch.device, amp_dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)


def plain_probe(
    data: dict, n_classes: int, epochs: int, batch_size: int, lr: float, device: torch.device,
    amp_dtype: torch.dtype | None = None, channels_last: bool = False, arch: str = "resnet18", seed: int = 0,
) -> float:
    """Linear probe the plain way: the frozen body is forwarded on every batch of every epoch."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    body = torchvision.models.get_model(arch)
    dim = body.fc.in_features
    body.fc = nn.Identity()
    body.eval().requires_grad_(False).to(device)
    if channels_last:
        body.to(memory_format=torch.channels_last)
    head = nn.Linear(dim, n_classes).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    prep = PlainInput(device, channels_last)
    xs, ys, vx, vy = data["train_x"], data["train_y"], data["val_x"], data["val_y"]
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        head.train()
        perm = torch.randperm(len(ys), generator=g)
        for i in range(0, len(ys), batch_size):
            idx = perm[i : i + batch_size]
            x, y = prep(xs[idx]), ys[idx].to(device, non_blocking=True)
            with torch.no_grad(), _autocast(device, amp_dtype):
                f = body(x)
            with _autocast(device, amp_dtype):
                loss = F.cross_entropy(head(f).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        head.eval()
        correct = torch.zeros((), device=device)
        with torch.no_grad(), _autocast(device, amp_dtype):
            for i in range(0, len(vy), max(batch_size, 128)):
                y = vy[i : i + max(batch_size, 128)].to(device)
                correct += (head(body(prep(vx[i : i + max(batch_size, 128)]))).argmax(1) == y).sum()
        float(correct)  # the accuracy a real loop would print
    _sync(device)
    return time.perf_counter() - t0


def plain_finetune_epoch(
    data: dict, n_classes: int, batch_size: int, lr: float, device: torch.device,
    amp_dtype: torch.dtype | None = None, channels_last: bool = False, arch: str = "resnet18",
    epochs: int = 1, seed: int = 0, max_batches: int | None = None,
) -> float:
    """Full fine-tuning the plain way: forward, loss, backward, step; then one validation pass."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(arch, num_classes=n_classes).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    prep = PlainInput(device, channels_last)
    xs, ys, vx, vy = data["train_x"], data["train_y"], data["val_x"], data["val_y"]
    g = torch.Generator().manual_seed(seed)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(ys), generator=g)
        for b, i in enumerate(range(0, len(ys), batch_size)):
            if max_batches is not None and b >= max_batches:
                break
            idx = perm[i : i + batch_size]
            x, y = prep(xs[idx]), ys[idx].to(device, non_blocking=True)
            with _autocast(device, amp_dtype):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        if vx is not None and max_batches is None:
            model.eval()
            correct = torch.zeros((), device=device)
            with torch.no_grad(), _autocast(device, amp_dtype):
                vb = max(batch_size, 128)
                for i in range(0, len(vy), vb):
                    correct += (model(prep(vx[i : i + vb])).argmax(1) == vy[i : i + vb].to(device)).sum()
            float(correct)
    _sync(device)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- helpers


def bundle_tensors(bundle) -> dict:
    """The uint8 images and labels the project's datasets hold: the plain loops use the same."""
    tr, va = bundle.train, bundle.val
    if tr.images is None or va.images is None:
        raise SystemExit("bench: expected an in-memory dataset")
    return {"train_x": tr.images, "train_y": tr.labels, "val_x": va.images, "val_y": va.labels}


def project_fit_seconds(cfg, runs_root: Path) -> tuple[float, float, object]:
    """Wall and process CPU time of the trainer's fit inside ``run_training`` (fit_start -> fit_end)."""
    from transfer_core.training import Callback, run_training

    marks: dict[str, tuple[float, float]] = {}
    now = lambda: (time.perf_counter(), time.process_time())  # noqa: E731

    class Marks(Callback):
        def on_fit_start(self, trainer):
            marks.setdefault("start", now())

        def on_fit_end(self, trainer):
            marks.setdefault("end", now())

    res = run_training(cfg, runs_root, callbacks=[Marks()])
    if res.state != "completed":
        raise SystemExit(f"bench: project run {res.state}: {res.message}")
    return marks["end"][0] - marks["start"][0], marks["end"][1] - marks["start"][1], res


def _fmt_ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 100 else f"{x:.0f}x"


def machine_line() -> str:
    try:
        load = "load average %.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        load = "load unknown"
    return (
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, {load}"
    )


# --------------------------------------------------------------------------- the benchmarks


def bench_probe(args, runs_root: Path) -> None:
    from transfer_core.config import from_dict
    from transfer_core.data import build_data
    from transfer_core.training import run_training, select_device

    data = {"dataset": "mnist5k", "image_size": 32, "val_fraction": 0.2}
    epochs = 10
    if args.quick:
        data.update(classes=[0, 1, 2, 3, 4], train_per_class=200)
        epochs = 5
    cfg = from_dict({
        "seed": 0, "name": "bench-probe", "method": "transfer", "data": data,
        "backbones": [{"name": "resnet18", "weights": "none", "freeze": "all"}],
        "train": {"epochs": epochs, "batch_size": args.batch_size, "lr": 1e-3, "device": args.device},
    })
    device = select_device(cfg.train.device)
    build_data(cfg.data, cfg.seed)  # warm-up: load mnist5k into this process once, for both sides
    bundle = build_data(cfg.data, cfg.seed)
    n_tr, n_va = len(bundle.train), len(bundle.val)
    print(f"\n== a) frozen resnet18 linear probe: mnist5k {cfg.data.image_size} px, {n_tr} train / {n_va} val, "
          f"{epochs} epochs, batch {args.batch_size}, {device.type}")

    t0, c0 = time.perf_counter(), time.process_time()
    cold = run_training(cfg, runs_root)
    t_cold, c_cold = time.perf_counter() - t0, time.process_time() - c0
    fc = cold.run.status().get("feature_cache", {})
    assert cold.state == "completed" and fc.get("extracted"), (cold.state, fc)

    warm_cfg = replace(cfg, train=replace(cfg.train, lr=3e-3))
    t0, c0 = time.perf_counter(), time.process_time()
    warm = run_training(warm_cfg, runs_root)
    t_warm, c_warm = time.perf_counter() - t0, time.process_time() - c0
    fw = warm.run.status().get("feature_cache", {})
    assert warm.state == "completed" and not fw.get("extracted") and fw.get("loaded"), (warm.state, fw)

    t0, c0 = time.perf_counter(), time.process_time()
    b2 = build_data(cfg.data, cfg.seed)  # the plain side sets its data up the same way
    plain_probe(bundle_tensors(b2), len(b2.classes), epochs, args.batch_size, 1e-3, device)
    t_plain, c_plain = time.perf_counter() - t0, time.process_time() - c0

    print("                                                  wall        CPU (process)")
    print(f"plain loop (frozen body forwarded every epoch) : {t_plain:7.1f} s   {c_plain:7.1f} s")
    print(f"project, cold (empty cache; features {fc.get('seconds', 0):.1f} s)  : {t_cold:7.1f} s   {c_cold:7.1f} s"
          f"   -> {_fmt_ratio(t_plain / t_cold)} faster (CPU {_fmt_ratio(c_plain / c_cold)})  [goal >= 4x]")
    print(f"project, warm (only lr changed; cache hit)      : {t_warm:7.1f} s   {c_warm:7.1f} s"
          f"   -> {_fmt_ratio(t_plain / t_warm)} faster (CPU {_fmt_ratio(c_plain / c_warm)})  [goal >= 15x]")
    print(f"RATIO a) cold {t_plain / t_cold:.2f}x  warm {t_plain / t_warm:.2f}x   "
          f"(CPU time: cold {c_plain / c_cold:.2f}x  warm {c_plain / c_warm:.2f}x)")


def bench_finetune(args, runs_root: Path) -> None:
    from transfer_core.config import from_dict
    from transfer_core.data import build_data
    from transfer_core.training import select_device

    data = {"dataset": "mnist5k", "image_size": 32, "val_fraction": 0.2}
    if args.quick:
        data.update(classes=[0, 1, 2, 3, 4], train_per_class=200)
    cfg = from_dict({
        "seed": 0, "name": "bench-finetune", "method": "transfer", "data": data,
        "backbones": [{"name": "resnet18", "weights": "none", "freeze": 0}],
        "train": {"epochs": 1, "batch_size": args.batch_size, "lr": 1e-3, "device": args.device},
    })
    device = select_device(cfg.train.device)
    bundle = build_data(cfg.data, cfg.seed)
    tensors = bundle_tensors(bundle)
    n_cls = len(bundle.classes)
    print(f"\n== b) one full fine-tuning epoch of resnet18: {len(bundle.train)} train / {len(bundle.val)} val, "
          f"batch {args.batch_size}, {device.type} (validation included on both sides)")
    plain_finetune_epoch(tensors, n_cls, args.batch_size, 1e-3, device, max_batches=3)  # warm-up (untimed)
    proj, plain, proj_c, plain_c = [], [], [], []
    for r in range(args.repeats):
        c0 = time.process_time()
        plain.append(plain_finetune_epoch(tensors, n_cls, args.batch_size, 1e-3, device))
        plain_c.append(time.process_time() - c0)
        wall, cpu, _ = project_fit_seconds(cfg, runs_root)
        proj.append(wall)
        proj_c.append(cpu)
        print(f"  round {r + 1}: plain {plain[-1]:6.1f} s   project {proj[-1]:6.1f} s   ratio {proj[-1] / plain[-1]:.3f}"
              f"   (CPU: plain {plain_c[-1]:.1f} s, project {proj_c[-1]:.1f} s)")
    ratio_min = min(proj) / min(plain)
    ratio_med = statistics.median(p / q for p, q in zip(proj, plain))
    ratio_cpu = min(proj_c) / min(plain_c)
    print(f"project / plain (min of each side) : {ratio_min:.3f}  [goal <= 1.05]")
    print(f"project / plain (median of rounds) : {ratio_med:.3f}")
    print(f"project / plain (CPU time, min of each side) : {ratio_cpu:.3f}")
    print(f"RATIO b) {ratio_min:.3f}   (median {ratio_med:.3f}, CPU time {ratio_cpu:.3f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller data and fewer epochs (about a minute)")
    p.add_argument("--only", choices=["a", "b"], default=None)
    p.add_argument("--repeats", type=int, default=None, help="rounds of b) (default 2, quick 1)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 2
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="transfer-lab-bench-"))
    os.environ["TRANSFER_LAB_RUNS"] = str(tmp / "runs")
    os.environ["TRANSFER_LAB_CACHE"] = str(tmp / "cache")  # empty: the cold run is cold
    print(f"bench_train: {machine_line()}; scratch folder {tmp}")
    if args.only in (None, "a"):
        bench_probe(args, tmp / "runs")
    if args.only in (None, "b"):
        bench_finetune(args, tmp / "runs")
    print(f"\nend: {machine_line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
