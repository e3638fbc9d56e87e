"""What a fit steps with: the optimizer over the model's parameter groups, and a compiled forward.

:func:`build_optimizer` gives the new layers ``lr`` and body group i of k ``lr * lr_decay **
(k - i)`` (see :func:`transfer_core.models.param_groups`); :class:`CompiledForward` is a
``torch.compile``d forward that falls back to eager, with a warning, when compiling fails.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
from torch import nn

from ..config import RunConfig
from ..errors import ConfigError
from ..i18n import _
from ..models import param_groups
from ..recipe import resolve

__all__ = ["build_optimizer", "CompiledForward"]

log = logging.getLogger(__name__)


def build_optimizer(cfg: RunConfig, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """The run's optimizer over the model's trainable parameter groups (``lr_decay`` per group)."""
    t = cfg.train
    groups = param_groups(model, lr, resolve(cfg).train.lr_decay)  # None: the recipe's rate (as the run will train)
    if not groups:
        raise ConfigError("backbones", _("nothing to train: every parameter is frozen"))
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=t.weight_decay)
    return torch.optim.Adam(groups, lr=lr, weight_decay=t.weight_decay)


class CompiledForward:
    """``torch.compile``d forward that falls back to eager (with a warning) if compiling fails."""

    def __init__(self, model: nn.Module, warnings: list[str]):
        self.model = model
        self.warnings = warnings
        self.fn: Callable[..., torch.Tensor] | None = torch.compile(model)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.fn is not None:
            try:
                return self.fn(x)
            except Exception as exc:
                if not type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
                    raise
                msg = f"train.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); training eagerly"
                log.warning("%s", msg)
                self.warnings.append(msg)
                self.fn = None
        return self.model(x)
