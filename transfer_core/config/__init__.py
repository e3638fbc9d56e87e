"""Typed run configuration: ``schema`` (the dataclasses), ``loading`` (strict YAML/dict
loading and ``--set`` overrides), ``checks`` (value ranges and cross-field rules)."""

from ..errors import ConfigError
from ..paths import data_roots, runs_dir
from .checks import validate
from .loading import apply_overrides, dump_yaml, from_dict, load_yaml, parse_yaml_text, to_dict
from .schema import (
    ACTIVATIONS,
    DEVICES,
    FUSION_MODES,
    METHODS,
    OPTIMIZERS,
    BackboneConfig,
    DataConfig,
    DistillConfig,
    FusionConfig,
    RunConfig,
    TrainConfig,
)

__all__ = [
    "ConfigError",
    "DataConfig",
    "BackboneConfig",
    "FusionConfig",
    "DistillConfig",
    "TrainConfig",
    "RunConfig",
    "from_dict",
    "to_dict",
    "load_yaml",
    "dump_yaml",
    "parse_yaml_text",
    "apply_overrides",
    "validate",
    "runs_dir",
    "data_roots",
    "METHODS",
    "FUSION_MODES",
    "ACTIVATIONS",
    "OPTIMIZERS",
    "DEVICES",
]
