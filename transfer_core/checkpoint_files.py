"""How a run's checkpoint lies on disk: what changes in ``checkpoint.pt``, a frozen body once beside it.

A checkpoint is one dict (see :mod:`transfer_core.training.checkpoint`). The tensors of
its ``model`` that a fit never changes (a frozen body: its parameters and the statistics
of its frozen BatchNorm) are written once per fit to a part file, ``frozen-e<N>.pt``
(N: the epoch the fit started from), and ``checkpoint.pt`` names it under
``model_parts``; every epoch then writes only the head and whatever else trains.
:func:`read_checkpoint` puts the parts back together, so predict, export, resume and
``run:`` sources read a whole checkpoint from the run folder alone. Every file is read
with ``weights_only=True``; a part name is a bare file name in the same folder, never a path.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any, Iterable

import torch

from .errors import WeightsError
from .i18n import _

__all__ = ["PART_PATTERN", "part_name", "read_checkpoint", "to_bytes", "checkpoint_bytes", "parts_of", "unused_parts"]

PART_PATTERN = re.compile(r"frozen-e\d+\.pt")


def part_name(start_epoch: int) -> str:
    """The part file a fit that started after epoch ``start_epoch`` writes its frozen tensors to."""
    return f"frozen-e{int(start_epoch)}.pt"


def _load(path: Path, mmap: bool = False) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def parts_of(path: Path) -> list[str]:
    """The part files checkpoint ``path`` needs ([] for a whole one, or when it is missing or unreadable).

    Reads the file memory-mapped: the tensors are not loaded."""
    try:
        ckpt = _load(Path(path), mmap=True)
    except Exception:  # noqa: BLE001 - a missing or damaged file needs no part
        return []
    parts = ckpt.get("model_parts") if isinstance(ckpt, dict) else None
    return [p for p in parts if isinstance(p, str)] if isinstance(parts, list) else []


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Checkpoint ``path`` with its ``model`` whole again (its part files merged under what it holds itself).

    Raises :class:`WeightsError` naming the part when one is missing, unreadable or not a
    bare file name of the same folder; errors reading ``path`` itself propagate."""
    path = Path(path)
    ckpt = _load(path)
    parts = ckpt.pop("model_parts", None) if isinstance(ckpt, dict) else None
    if not parts:
        return ckpt
    model: dict[str, torch.Tensor] = {}
    for name in parts:
        if not isinstance(name, str) or not PART_PATTERN.fullmatch(name):
            raise WeightsError(_("checkpoint {path} names an invalid part file {name!r}").format(path=path, name=name))
        try:
            part = _load(path.parent / name)
        except FileNotFoundError:
            raise WeightsError(_("checkpoint {path} needs {name} beside it, which is missing").format(path=path, name=name)) from None
        except Exception as exc:  # noqa: BLE001
            raise WeightsError(_("cannot read {path}: {error}").format(path=path.parent / name, error=type(exc).__name__)) from None
        if not isinstance(part, dict):
            raise WeightsError(_("{path} is not a part of a checkpoint").format(path=path.parent / name))
        model.update(part)
    model.update(ckpt.get("model") or {})
    ckpt["model"] = model
    return ckpt


def to_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` into bytes (what a checkpoint or part file holds)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def checkpoint_bytes(path: str | Path) -> bytes:
    """Checkpoint ``path`` as one self-contained file's bytes (parts merged), e.g. for a download."""
    return to_bytes(read_checkpoint(path))


def unused_parts(folder: Path, keep: Iterable[str]) -> list[Path]:
    """The part files in ``folder`` that no name in ``keep`` refers to."""
    keep = set(keep)
    return [p for p in Path(folder).glob("frozen-e*.pt") if PART_PATTERN.fullmatch(p.name) and p.name not in keep]
