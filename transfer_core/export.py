"""Export a run's model to TorchScript or ONNX, into the run folder.

The exported graph takes a batch of [0, 1] images of the run's image size
(N x 3 x S x S); resizing to the backbone's input size and its normalisation are
inside the model, so a consumer only needs the run's ``preprocessing`` to feed it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from .i18n import _
from .predict import LoadedRun, load_run_model

__all__ = ["export_run", "FORMATS"]

log = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")


def _example(loaded: LoadedRun) -> torch.Tensor:
    s = int(loaded.preprocessing["image_size"])
    return torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(0))


def export_run(ref: str | Path, fmt: str, runs_root: str | Path | None = None) -> Path:
    """Write ``model.ts`` or ``model.onnx`` beside the checkpoint and return its path."""
    if fmt not in FORMATS:
        raise ValueError(_("unknown export format {format!r}: use {formats}").format(format=fmt, formats=" or ".join(FORMATS)))
    loaded = load_run_model(ref, runs_root)
    x = _example(loaded)
    if fmt == "torchscript":
        out = loaded.run.dir / "model.ts"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(loaded.model, x, check_trace=False)
        tmp = out.with_suffix(".ts.tmp")
        traced.save(str(tmp))
        tmp.replace(out)
        return out
    out = loaded.run.dir / "model.onnx"
    tmp = loaded.run.dir / "model.tmp.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            loaded.model,
            (x,),
            str(tmp),
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
            external_data=False,
            dynamo=True,
        )
    tmp.replace(out)
    return out
