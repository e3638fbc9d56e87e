"""Registry over torchvision's image classifiers, seen as headless feature extractors.

Transfer learning always does the same three things to a torchvision classifier: cut off
the final ``Linear``, load some weights into what is left, and freeze a prefix of it. This
package describes every classifier once (:class:`BackboneSpec`) so that the config
validator, the UI and the trainer read the same facts. It is split the way timm splits
its model code: ``registry`` (names, families; timm's ``_registry``), ``spec`` (the facts,
computed on the meta device and cached), ``build`` (bodies; ``_builder``), ``groups``
(layer groups for freezing; ``_manipulate``) and ``weights`` (``_pretrained``).
"""

from __future__ import annotations

from ..errors import WeightsError
from .build import build_body
from .groups import LayerGroup, frozen_groups, group_index_of, trainable_params
from .registry import CURATED, list_backbones, register_backbone
from .spec import BackboneSpec, get_backbone, input_size
from .weights import imagenet_weights_info, load_imagenet_state, load_state_into_body, load_weights_file

__all__ = [
    "WeightsError",
    "LayerGroup",
    "BackboneSpec",
    "CURATED",
    "register_backbone",
    "list_backbones",
    "get_backbone",
    "build_body",
    "input_size",
    "group_index_of",
    "frozen_groups",
    "trainable_params",
    "imagenet_weights_info",
    "load_imagenet_state",
    "load_state_into_body",
    "load_weights_file",
]
