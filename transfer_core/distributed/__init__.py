"""Scale-out on PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

Three rooms: :mod:`.context` (joining torchrun's process group, the collectives the
trainer, the feature cache and the run lifecycle call), :mod:`.sampling` (how data is
split between ranks and put back in order) and :mod:`.launch` (the dashboard starting
``torchrun`` as a subprocess and stopping it). Importing this package stays light: the
launcher's names are imported here (they need no torch), the rest on first use, so the
server that only starts jobs never imports ``torch.distributed``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import PeerFailed
from .launch import Launch, failure_message, launch, launched, torchrun_command

__all__ = [
    "DistContext",
    "PeerFailed",
    "ReadOnlyRun",
    "launched",
    "init_from_env",
    "Launch",
    "launch",
    "torchrun_command",
    "BACKENDS",
    "failure_message",
]

_LAZY = {name: "context" for name in ("DistContext", "ReadOnlyRun", "init_from_env", "BACKENDS")}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
