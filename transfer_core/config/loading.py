"""Strict loading of a run config: plain data or YAML to dataclasses, ``--set`` overrides.

Why strict: a misspelt key silently ignored is a run that did something other than
what the user asked for. Every unknown key or wrong type raises :class:`ConfigError`
naming the dotted field, which the CLI prints as one line and the UI shows next to the
widget.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from ..errors import ConfigError
from ..i18n import _
from .schema import RunConfig

__all__ = ["from_dict", "to_dict", "load_yaml", "dump_yaml", "parse_yaml_text", "apply_overrides"]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert only lossless cases."""
    origin = get_origin(tp)
    if origin is Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(path, _("must not be empty"))
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(path, _("has an invalid value {value!r} ({errors})").format(value=value, errors="; ".join(errors)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, _("must be a list, got {value!r}").format(value=value))
        (item_tp,) = get_args(tp)
        return [_coerce(v, item_tp, f"{path}.{i}") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _from_mapping(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, _("must be true or false, got {value!r}").format(value=value))
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(path, _("must be an integer, got {value!r}").format(value=value))
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(path, _("must be an integer, got {value!r}").format(value=value))
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(path, _("must be a number, got {value!r}").format(value=value))
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(path, _("must be a number, got {value!r}").format(value=value))
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, _("must be a string, got {value!r}").format(value=value))
    raise ConfigError(path, f"unsupported type {_type_name(tp)}")  # pragma: no cover


def _from_mapping(cls: type, data: Any, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, _("must be a mapping, got {value!r}").format(value=data))
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = unknown[0]
        where = f"{path}.{key}" if path else str(key)
        import difflib

        close = difflib.get_close_matches(str(key), names, n=3)
        if close:
            raise ConfigError(where, _("unknown key (did you mean {names}?)").format(names=", ".join(close)))
        raise ConfigError(where, _("unknown key (known: {names})").format(names=", ".join(names)))
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{path}.{name}" if path else name)
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> RunConfig:
    """Build a :class:`RunConfig` from plain data; unknown keys and bad types raise."""
    cfg = _from_mapping(RunConfig, data, "")
    return cfg


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """Plain, YAML-safe dict of the full resolved config."""
    return dataclasses.asdict(cfg)


def parse_yaml_text(text: str, source: str = "config") -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", exc)
        if mark:
            raise ConfigError("", _("{source} is not valid YAML at line {line}, column {column}: {problem}").format(
                source=source, line=mark.line + 1, column=mark.column + 1, problem=problem)) from None
        raise ConfigError("", _("{source} is not valid YAML: {problem}").format(source=source, problem=problem)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("", _("{source} must be a YAML mapping at the top level").format(source=source))
    return data


def load_yaml(path: str | os.PathLike, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config, apply ``key.path=value`` overrides, validate the types."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", _("cannot read config {path}: {error}").format(path=p, error=exc.strerror or exc)) from None
    data = parse_yaml_text(text, str(p))
    if overrides:
        data = apply_overrides(data, overrides)
    return from_dict(data)


def dump_yaml(cfg: RunConfig | dict[str, Any]) -> str:
    data = to_dict(cfg) if isinstance(cfg, RunConfig) else cfg
    return yaml.safe_dump(data, sort_keys=False)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.0.c=value`` overrides to a plain config dict (values parsed as YAML).

    A list index one past the end appends (so ``backbones.1.name=vgg11`` adds a
    backbone); missing mappings are created. The result is checked later by
    :func:`from_dict`, so a typo still fails loudly.
    """
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(item, _("override must look like key.path=value"))
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() != "" else ""
        except yaml.YAMLError:
            value = raw
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise ConfigError(key, _("override key is empty"))
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_index = not last and parts[i + 1].isdigit()
            if isinstance(node, list):
                if not part.isdigit():
                    raise ConfigError(".".join(parts[: i + 1]), _("expected a list index"))
                idx = int(part)
                if idx > len(node):
                    raise ConfigError(".".join(parts[: i + 1]), _("index {index} is past the end (list has {n})").format(
                        index=idx, n=len(node)))
                if idx == len(node):
                    node.append(None if last else ([] if nxt_is_index else {}))
                if last:
                    node[idx] = value
                else:
                    if node[idx] is None:
                        node[idx] = [] if nxt_is_index else {}
                    node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = _default_container(parts[: i + 1], nxt_is_index)
                    node = node[part]
            else:
                raise ConfigError(".".join(parts[:i]), _("is not a mapping or list"))
    return out


def _default_container(parts: list[str], index_next: bool) -> Any:
    """When an override walks into a missing section, start from the dataclass defaults."""
    if parts == ["backbones"]:
        return [to_dict(RunConfig())["backbones"][0]]
    if index_next:
        return []
    return {}
