"""What a trained model costs to ship and run: parameters, exported size, time per image.

Measured on this machine's device (CUDA, else MPS, else CPU) from the run's final
checkpoint, and kept in the run folder (``cost.json``, keyed by the checkpoint's size and
mtime, the device and the torch version), so a page asks for it again at no cost.
The exported size is that of the TorchScript file :func:`transfer_core.export.export_run`
writes, traced in memory; the time per image is the median of timed batches of
``BATCH`` validation-sized images after a warm-up, divided by the batch: the fastest of
several batches, as ``timeit`` advises, since a busy machine only ever adds time (on a
shared 2-core box the median of a measurement taken while tests ran made mobilenet_v3_small
look 2× slower than resnet18; alone it is 1.5× faster). ``refresh=True`` measures again.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from .predict import load_run_model
from .runs import Run, RunStore

__all__ = ["BATCH", "model_cost", "is_measured"]

log = logging.getLogger(__name__)

BATCH = 32
_REPEATS = 10


def _key(run: Run, device: torch.device) -> dict[str, Any]:
    st = run.checkpoint_path.stat()
    return {"checkpoint": [st.st_size, st.st_mtime_ns], "device": device.type, "torch": torch.__version__, "batch": BATCH}


def _export_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x, check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    return buf.getbuffer().nbytes


def _ms_per_image(model: torch.nn.Module, x: torch.Tensor, device: torch.device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        model(x)  # warm-up: allocations, kernel choice
        sync()
        for _ in range(_REPEATS):
            t0 = time.perf_counter()
            model(x)
            sync()
            times.append(time.perf_counter() - t0)
    return min(times) * 1000.0 / x.shape[0]


def _cached(run: Run, key: dict[str, Any]) -> dict[str, Any] | None:
    cached = run.read_json("cost.json") if (run.dir / "cost.json").is_file() else None
    return dict(cached["cost"]) if isinstance(cached, dict) and cached.get("key") == key else None


def is_measured(run: Run, device: str | None = None) -> bool:
    """Whether ``cost.json`` already holds the cost of the run's current checkpoint on this device."""
    from .training.device import select_device

    try:
        return _cached(run, _key(run, select_device(device or "auto"))) is not None
    except OSError:  # no checkpoint
        return False


def model_cost(ref: str | Path | Run, runs_root: str | Path | None = None, device: str | None = None,
               refresh: bool = False) -> dict[str, Any]:
    """``{params, export_mb, ms_per_image, device, batch}`` of a run's final model (cached in the run)."""
    from .distill.student import inference_parameters
    from .training.device import select_device

    run = ref if isinstance(ref, Run) else RunStore(runs_root).get(str(ref))
    dev = select_device(device or "auto")
    key = _key(run, dev)
    cached = None if refresh else _cached(run, key)
    if cached is not None:
        return cached
    loaded = load_run_model(run, runs_root)
    model = loaded.model.eval()
    s = int(loaded.preprocessing["image_size"])
    x = torch.rand(BATCH, 3, s, s, generator=torch.Generator().manual_seed(0))
    size = _export_bytes(model, x[:2])
    model = model.to(dev)
    ms = _ms_per_image(model, x.to(dev), dev)
    cost = {"params": int(inference_parameters(model)), "export_mb": round(size / 1e6, 3),
            "ms_per_image": round(ms, 4), "device": dev.type, "batch": BATCH}
    try:
        run.write_json("cost.json", {"key": key, "cost": cost})
    except OSError as exc:  # a read-only run folder still gets its numbers
        log.warning("could not keep the model cost of run %s: %s", run.id, exc)
    return cost
