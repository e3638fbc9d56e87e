"""Cache files that carry their own key: read back only when the key matches, written atomically.

The feature cache and the teachers' outputs both store tensors with the key material they
were computed for; a truncated hash in the file name can then never hand back another
entry, and a damaged or foreign file is a miss (a warning), never an error.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import torch

from ..runs import atomic_write_bytes

__all__ = ["read_keyed", "write_keyed"]

log = logging.getLogger(__name__)


def read_keyed(path: Path, material: dict[str, Any], what: str) -> dict[str, Any] | None:
    """The dict stored at ``path`` when its ``key`` equals ``material`` (``weights_only``), else None."""
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(obj, dict) or obj.get("key") != material:
            raise ValueError("key mismatch")
        return obj
    except Exception as exc:  # a damaged or foreign file is a miss, never an error
        log.warning("ignoring cached %s %s: %s", what, path, exc)
        return None


def write_keyed(path: Path, obj: dict[str, Any], what: str) -> bool:
    """Write ``obj`` (holding its ``key``) atomically; False (and a warning) when the disk refuses."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(obj, buf)
        atomic_write_bytes(path, buf.getvalue())
        return True
    except OSError as exc:  # a full disk or a cleared cache must not fail the run
        log.warning("could not write cached %s %s: %s", what, path, exc)
        return False
