"""GPU benchmark: resnet50 fine-tuning throughput and the frozen-feature cache speed-up.

Run it with ``bench/gpu.sh`` (one prepared command on a CUDA machine). Synthetic data
(random uint8 images in memory, the same tensors for the project and the plain loop),
so nothing is downloaded. Without CUDA it stops with a clear message and exit code 2.

1. resnet50 fine-tuning, 224 px, batch 256, AMP (bf16 where supported, else fp16 with a
   scaler): images/s of the project's trainer (channels_last, pinned memory, loader
   workers, one host sync per batch) against a plain loop with the same AMP and memory
   format, measured over one epoch after a warm-up epoch. ``--compile`` adds a
   ``train.compile: true`` row.
2. Frozen resnet50 linear probe, 10 epochs: the project's whole run, cold (extraction)
   and warm (cache hit), against a plain loop that forwards the frozen body every epoch.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import torch  # noqa: E402

from bench_train import machine_line, plain_finetune_epoch, plain_probe  # noqa: E402


def _die(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def synthetic_bundle(n_train: int, n_val: int, size: int, n_classes: int, seed: int = 0):
    """A DataBundle of random uint8 images held in memory (what build_data returns for a built-in)."""
    from transfer_core.data import DataBundle, InMemoryImageDataset
    from transfer_core.data.preprocessing import preprocessing_dict as _preprocessing

    g = torch.Generator().manual_seed(seed)
    mk = lambda n: (  # noqa: E731
        torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
        torch.randint(0, n_classes, (n,), generator=g),
    )
    (tx, ty), (vx, vy) = mk(n_train), mk(n_val)
    info = {
        "source": "synthetic",
        "fingerprint": f"synthetic-{n_train}-{n_val}-{size}-{n_classes}-{seed}",
        "warnings": [],
        "num_train": n_train,
        "num_val": n_val,
    }
    return DataBundle(
        train=InMemoryImageDataset(tx, ty, size),
        val=InMemoryImageDataset(vx, vy, size),
        classes=[str(i) for i in range(n_classes)],
        preprocessing=_preprocessing(size, "square", "RGB"),
        info=info,
    )


def _use_bundle(bundle) -> None:
    """Make run_training use the synthetic bundle (the rest of the run is the real one)."""
    from transfer_core.training import lifecycle

    lifecycle.build_data = lambda cfg, seed, roots=None: bundle


DEVICE = "cuda"


def _cfg(arch: str, freeze, epochs: int, batch: int, size: int, compile_: bool = False, lr: float = 1e-3):
    from transfer_core.config import from_dict

    return from_dict({
        "seed": 0, "name": f"gpu-{arch}", "method": "transfer",
        "data": {"dataset": "synthetic", "image_size": size},
        "backbones": [{"name": arch, "weights": "none", "freeze": freeze}],
        "train": {"epochs": epochs, "batch_size": batch, "lr": lr, "device": DEVICE, "amp": True, "compile": compile_},
    })


def project_epoch_throughput(cfg, runs_root: Path, n_train: int) -> float:
    """images/s of the project's second training epoch (the first one warms cuDNN / compile up)."""
    from transfer_core.training import Callback, run_training

    marks: dict = {}

    class Marks(Callback):
        def on_batch_end(self, trainer, epoch, batch, batches, loss):
            if epoch == 2 and batch == batches:
                marks["end"] = time.perf_counter()

        def on_epoch_end(self, trainer, epoch, metrics):
            if epoch == 1:
                marks["start"] = time.perf_counter()

    res = run_training(cfg, runs_root, callbacks=[Marks()])
    if res.state != "completed":
        _die(f"project run {res.state}: {res.message}")
    trained = (n_train // cfg.train.batch_size) * cfg.train.batch_size if n_train % cfg.train.batch_size == 1 else n_train
    return trained / (marks["end"] - marks["start"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer images")
    p.add_argument("--compile", action="store_true", help="also measure train.compile: true")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--images", type=int, default=None, help="training images (default 10240, quick 2560)")
    p.add_argument("--cpu-smoke", action="store_true", help=argparse.SUPPRESS)  # check the script's logic on a CPU, tiny sizes
    args = p.parse_args(argv)
    global DEVICE
    if args.cpu_smoke:
        DEVICE = "cpu"
    elif not torch.cuda.is_available():
        _die("bench/gpu.sh needs a CUDA GPU: torch.cuda.is_available() is False "
             f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); run it on a GPU machine")
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="transfer-lab-gpu-bench-"))
    os.environ["TRANSFER_LAB_RUNS"] = str(tmp / "runs")
    os.environ["TRANSFER_LAB_CACHE"] = str(tmp / "cache")
    runs = tmp / "runs"
    dev = torch.device(DEVICE)
    n_train = args.images or (2560 if args.quick else 10240)
    n_val, size, n_cls, bs = 512, 224, 100, args.batch_size
    if args.cpu_smoke:
        amp, n_train, n_val, size, bs = None, 48, 16, 32, 16
        print(f"bench_gpu --cpu-smoke: the code paths on the CPU, tiny sizes; the numbers mean nothing; {machine_line()}")
    else:
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        torch.backends.cudnn.benchmark = True
        print(f"bench_gpu: {torch.cuda.get_device_name(0)}, AMP {str(amp).replace('torch.', '')}; {machine_line()}")
    bundle = synthetic_bundle(n_train, n_val, size, n_cls)
    _use_bundle(bundle)
    data = {"train_x": bundle.train.images, "train_y": bundle.train.labels, "val_x": None, "val_y": None}

    # 1. fine-tuning throughput -----------------------------------------------------------
    print(f"\n== 1) resnet50 fine-tuning, {size} px, batch {bs}, {n_train} synthetic images, AMP")
    cl = dev.type == "cuda"
    plain_finetune_epoch(data, n_cls, bs, 1e-3, dev, amp, channels_last=cl, arch="resnet50", max_batches=10)
    t = plain_finetune_epoch(data, n_cls, bs, 1e-3, dev, amp, channels_last=cl, arch="resnet50")
    plain_ips = n_train / t
    proj_ips = project_epoch_throughput(_cfg("resnet50", 0, 2, bs, size), runs, n_train)
    print(f"plain loop (AMP, channels_last)  : {plain_ips:8.0f} img/s")
    print(f"project trainer                  : {proj_ips:8.0f} img/s   project/plain {proj_ips / plain_ips:.3f}")
    if args.compile:
        comp_ips = project_epoch_throughput(_cfg("resnet50", 0, 2, bs, size, compile_=True), runs, n_train)
        print(f"project trainer, train.compile   : {comp_ips:8.0f} img/s   project/plain {comp_ips / plain_ips:.3f}")
    print(f"RATIO gpu-1) fine-tune throughput project/plain {proj_ips / plain_ips:.3f} ({proj_ips:.0f} img/s)")

    # 2. frozen-cache speed-up -------------------------------------------------------------
    epochs = 10
    print(f"\n== 2) frozen resnet50 linear probe, {n_train} train / {n_val} val, {epochs} epochs, batch {bs}")
    probe = _cfg("resnet50", "all", epochs, bs, size)
    t0 = time.perf_counter()
    from transfer_core.training import run_training

    cold = run_training(probe, runs)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = run_training(replace(probe, train=replace(probe.train, lr=3e-3)), runs)
    t_warm = time.perf_counter() - t0
    if cold.state != "completed" or warm.state != "completed":
        _die(f"probe runs: {cold.state} / {warm.state}: {cold.message} {warm.message}")
    if warm.run.status()["feature_cache"]["extracted"]:
        _die("the warm run extracted features again: the cache was not reused")
    vdata = {"train_x": bundle.train.images, "train_y": bundle.train.labels, "val_x": bundle.val.images, "val_y": bundle.val.labels}
    t_plain = plain_probe(vdata, n_cls, epochs, bs, 1e-3, dev, amp, channels_last=cl, arch="resnet50")
    print(f"plain loop (body forwarded every epoch) : {t_plain:7.1f} s")
    print(f"project cold (extraction)               : {t_cold:7.1f} s   -> {t_plain / t_cold:.1f}x faster")
    print(f"project warm (lr changed, cache hit)    : {t_warm:7.1f} s   -> {t_plain / t_warm:.1f}x faster")
    print(f"RATIO gpu-2) frozen cache cold {t_plain / t_cold:.2f}x warm {t_plain / t_warm:.2f}x")
    if dev.type == "cuda":
        print(f"\nmax GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB; scratch {tmp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
