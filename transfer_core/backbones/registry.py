"""The registry of backbone names: which torchvision classifiers exist, under which name and family.

Like torchvision's ``models/_api.py`` and timm's ``_registry.py``: a module-level dict filled
by :func:`register_backbone`, which refuses duplicates; :func:`list_backbones` reads it
without building anything, and :func:`canonical_name` turns what a user typed into a
registered name or a one-line error that names close matches. Pretrained weights are
torchvision's own ``Weights`` enums (:func:`default_weights`), not a copy of their URLs.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from typing import Any

import torchvision

from ..i18n import _

__all__ = [
    "CURATED",
    "register_backbone",
    "list_backbones",
    "canonical_name",
    "is_curated",
    "family_of",
    "default_weights",
]

log = logging.getLogger(__name__)

#: Backbones shown first in the UI: small or classic, each a different family.
CURATED: tuple[str, ...] = (
    "alexnet",
    "convnext_tiny",
    "densenet121",
    "efficientnet_b0",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "regnet_y_400mf",
    "resnet18",
    "resnet34",
    "resnet50",
    "shufflenet_v2_x1_0",
    "squeezenet1_1",
    "vgg11",
    "vgg16",
    "vit_b_16",
)

# torchvision module name -> family shown to users (and used to pick a group layout).
_FAMILY_BY_MODULE = {
    "alexnet": "alexnet",
    "convnext": "convnext",
    "densenet": "densenet",
    "efficientnet": "efficientnet",
    "googlenet": "googlenet",
    "inception": "inception",
    "maxvit": "maxvit",
    "mnasnet": "mnasnet",
    "mobilenetv2": "mobilenet",
    "mobilenetv3": "mobilenet",
    "regnet": "regnet",
    "resnet": "resnet",
    "shufflenetv2": "shufflenet",
    "squeezenet": "squeezenet",
    "swin_transformer": "swin",
    "vgg": "vgg",
    "vision_transformer": "vit",
}


@dataclass(frozen=True)
class _Entry:
    name: str
    curated: bool


_REGISTRY: dict[str, _Entry] = {}


def register_backbone(name: str, *, curated: bool = False) -> str:
    """Add a torchvision classifier to the registry; a second registration of a name fails.

    Refusing duplicates (as torchvision's ``register_model`` does) keeps one name meaning
    one architecture, which saved configs and runs rely on.
    """
    if name in _REGISTRY:
        raise ValueError(f"backbone {name!r} is already registered")
    _REGISTRY[name] = _Entry(name=name, curated=curated)
    return name


def _register_torchvision() -> None:
    for model_name in torchvision.models.list_models(module=torchvision.models):
        register_backbone(model_name, curated=model_name in CURATED)
    missing = [n for n in CURATED if n not in _REGISTRY]
    if missing:  # a torchvision upgrade renamed something: say so rather than fail at import
        log.warning("curated backbones missing from torchvision: %s", ", ".join(missing))


_register_torchvision()


def list_backbones(curated_only: bool = False) -> list[str]:
    """Registered names, sorted. Builds nothing."""
    return sorted(n for n, e in _REGISTRY.items() if e.curated or not curated_only)


def canonical_name(name: str) -> str:
    """The registered name a user meant (case and spaces forgiven), else a ``ValueError`` naming close matches."""
    key = str(name).strip()
    if key in _REGISTRY:
        return key
    if key.lower() in _REGISTRY:
        return key.lower()
    close = difflib.get_close_matches(key.lower(), list(_REGISTRY), n=3, cutoff=0.6)
    if close:
        raise ValueError(_("unknown backbone {name!r} (did you mean {names}?)").format(name=name, names=", ".join(close)))
    raise ValueError(_("unknown backbone {name!r} (python -m transfer_core backbones lists them)").format(name=name))


def is_curated(name: str) -> bool:
    """Whether a registered name is one of the backbones the UI shows first."""
    return _REGISTRY[name].curated


def family_of(name: str) -> str:
    """The family of a registered name ("resnet", "vit", ...), from the torchvision module that builds it."""
    module = torchvision.models.get_model_builder(name).__module__.rsplit(".", 1)[-1]
    return _FAMILY_BY_MODULE.get(module, module)


def default_weights(name: str) -> Any:
    """torchvision's DEFAULT ImageNet ``Weights`` enum member for a registered name."""
    return torchvision.models.get_model_weights(name).DEFAULT
