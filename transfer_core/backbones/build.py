"""Constructing a body: a torchvision classifier without its final layer, real or on the meta device.

A *body* is the registered model with its ImageNet classifier replaced by ``Identity`` (or, for
SqueezeNet's conv classifier, by a global average pool), so ``forward`` returns features.
:func:`build_meta` makes the same model with meta tensors (shapes only: no memory, no
initialisation cost), which is how specs are computed without allocating a network.
"""

from __future__ import annotations

from typing import Any

import torch
import torchvision
from torch import nn
from torch.overrides import TorchFunctionMode

from .registry import canonical_name, default_weights, family_of

__all__ = ["build_body", "build_meta", "strip_head"]

_NUM_CLASSES = 1000  # torchvision builds ImageNet heads by default; that is how the head is found


def _builder_kwargs(name: str) -> dict[str, Any]:
    """Builder arguments that make a random-init model match its DEFAULT ImageNet weights."""
    family = family_of(name)
    if family in ("googlenet", "inception"):
        # No auxiliary heads: forward must return one tensor in train mode too.
        # transform_input=True is what torchvision sets when it loads ImageNet weights.
        return {"aux_logits": False, "transform_input": True, "init_weights": True}
    if family == "vit":
        # vit_h_14's DEFAULT (SWAG) weights are for 518 px; the position embedding
        # must be built for that size or those weights cannot be loaded.
        return {"image_size": int(default_weights(name).meta.get("min_size", (224, 224))[0])}
    return {}


class _EmptyOnMeta(TorchFunctionMode):
    """Put only ``torch.empty`` (parameter storage) on meta; other tensors stay on CPU.

    RegNet computes its stage widths with tensors and calls ``.tolist()`` while
    building, which a blanket ``torch.device("meta")`` cannot do.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = dict(kwargs or {})
        if func is torch.empty and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


_META_INPLACE = frozenset(
    {"normal_", "uniform_", "fill_", "zero_", "erfinv_", "mul_", "add_", "sub_", "div_", "clamp_", "copy_"}
)


class _SkipMetaInit(TorchFunctionMode):
    """Turn weight initialisation of meta tensors into a no-op.

    In-place init on meta changes nothing but still runs Python decompositions,
    which were about half the cost of a meta build.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name.endswith("_") and (name in _META_INPLACE or getattr(func, "__module__", "") == "torch.nn.init"):
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


def _construct(name: str) -> nn.Module:
    with _SkipMetaInit():
        return torchvision.models.get_model(name, weights=None, **_builder_kwargs(name))


def build_meta(name: str) -> nn.Module:
    """The full torchvision model with meta tensors: shapes only, no memory, no init cost."""
    try:
        with torch.device("meta"):
            return _construct(name)
    except NotImplementedError:
        # CPU default for the helper tensors even inside a caller's meta context.
        with torch.device("cpu"), _EmptyOnMeta():
            return _construct(name).to("meta")


def _find_head(model: nn.Module) -> tuple[str, int]:
    """Dotted path and input width of the final classifier layer.

    The final layer is the last ``Linear`` producing the 1000 ImageNet logits;
    SqueezeNet's is a 1x1 ``Conv2d`` inside ``classifier``.
    """
    found: tuple[str, int] | None = None
    for path, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == _NUM_CLASSES:
            found = (path, module.in_features)
    if found is not None:
        return found
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Sequential):
        for module in classifier:
            if isinstance(module, nn.Conv2d) and module.out_channels == _NUM_CLASSES:
                return "classifier", module.in_channels
    raise RuntimeError(f"cannot find the final classifier layer of {type(model).__name__}")


def strip_head(model: nn.Module) -> tuple[nn.Module, str, int]:
    """Replace the final classifier layer in place; return (body, head_path, feature_dim)."""
    head_path, feature_dim = _find_head(model)
    parent_path, _, child = head_path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    if isinstance(getattr(parent, child), nn.Linear):
        setattr(parent, child, nn.Identity())
    else:  # SqueezeNet: a conv classifier; global-average-pool its input instead
        setattr(parent, child, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)))
    return model, head_path, feature_dim


def build_body(name: str) -> nn.Module:
    """A randomly initialised torchvision model whose final classifier layer is gone.

    ``forward(x)`` maps ``B x 3 x H x W`` (H = W = :func:`input_size`) to
    ``B x feature_dim``. Built on the current default device (so ``with
    torch.device("meta")`` gives a shape-only body).
    """
    key = canonical_name(name)
    meta = torch.get_default_device().type == "meta"
    body, _, _ = strip_head(build_meta(key) if meta else _construct(key))
    return body
