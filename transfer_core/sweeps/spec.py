"""A sweep spec: parse and check ``SWEEP.yaml``, expand it to the configs of its trials.

Strict like the run config: an unknown key, an empty axis, a value that makes a trial's
config invalid — each is one :class:`ConfigError` naming the field, before anything runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import RunConfig, apply_overrides, from_dict, parse_yaml_text, to_dict, validate
from ..errors import ConfigError
from ..i18n import _

__all__ = ["SweepSpec", "load_sweep", "DISTRIBUTIONS", "point_label"]

KEYS = ("name", "description", "base", "before", "seeds", "axes", "search")
DISTRIBUTIONS = ("log_uniform", "uniform", "int", "choice")


@dataclass
class SweepSpec:
    name: str
    base: dict[str, Any]  # the base run config, as a mapping
    seeds: list[int]
    axes: dict[str, dict[Any, dict[str, Any]]]  # axis -> label -> overrides {dotted path: value}
    before: list[dict[str, Any]] = field(default_factory=list)  # configs of runs needed first
    search: dict[str, dict[str, Any]] = field(default_factory=dict)  # dotted path -> {distribution: args}
    n_search: int = 0  # sampled points (search only)
    description: str = ""

    # -- shape --------------------------------------------------------------------
    def axis_labels(self) -> dict[str, list[Any]]:
        return {a: list(v) for a, v in self.axes.items()}

    def points(self) -> list[dict[str, Any]]:
        """The grid points, first axis outermost ({} once when there are no axes)."""
        names = list(self.axes)
        return [dict(zip(names, combo)) for combo in itertools.product(*(list(self.axes[a]) for a in names))]

    @property
    def is_search(self) -> bool:
        return bool(self.search)

    @property
    def n_trials(self) -> int:
        """Runs in total: grid points x seeds, or sampled points x seeds (before-runs not counted)."""
        return (self.n_search if self.is_search else len(self.points())) * len(self.seeds)

    # -- configs ------------------------------------------------------------------
    def trial_config(self, point: Mapping[str, Any], seed: int, params: Mapping[str, Any] | None = None) -> RunConfig:
        """The validated config of one trial; its name is the sweep's and its point's (the same for every seed)."""
        overrides: dict[str, Any] = {}
        for axis, label in point.items():
            overrides.update(self.axes[axis][label])
        overrides.update(params or {})
        data = apply_overrides(self.base, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])
        data["seed"] = int(seed)
        # the trial's final model is its result: no checkpoint per new best (a trial is short; disk and time saved)
        data.setdefault("train", {})["checkpoint_best"] = False
        data["name"] = f"{self.name}: {point_label(point, params)}" if (point or params) else self.name
        return validate(from_dict(data))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["base"] = self.base
        if self.before:
            out["before"] = self.before
        out["seeds"] = list(self.seeds)
        out["axes"] = {a: self._axis_dict(a) for a in self.axes}
        if self.search:
            out["search"] = {"n_trials": self.n_search, **self.search}
        return out

    def _axis_dict(self, axis: str) -> Any:
        """A dotted axis as its list of values, a named one as label -> overrides (as it was written)."""
        labels = self.axes[axis]
        if all(list(ov) == [axis] and _label(ov[axis]) == lab for lab, ov in labels.items()):
            return [ov[axis] for ov in labels.values()]
        return {str(k): dict(v) for k, v in labels.items()}

    def fingerprint(self) -> str:
        """Eight hex digits that change whenever what the sweep runs changes (not its description)."""
        d = self.to_dict()
        d.pop("description", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:8]


def point_label(point: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> str:
    parts = [f"{k}={v}" for k, v in point.items()]
    parts += [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in (params or {}).items()]
    return ", ".join(parts)


# --------------------------------------------------------------------------- loading


def _config_source(src: Any, where: str, base_dir: Path | None) -> dict[str, Any]:
    """A config given as a path (relative to the sweep file, then the working folder) or inline."""
    if isinstance(src, Mapping):
        return dict(src)
    if not isinstance(src, str) or not src.strip():
        raise ConfigError(where, _("give a config file path or an inline config mapping"))
    candidates = [Path(src)] if Path(src).is_absolute() else [*([base_dir / src] if base_dir else []), Path(src)]
    for c in candidates:
        if c.is_file():
            data = parse_yaml_text(c.read_text(encoding="utf-8"), str(c))
            if not isinstance(data, dict):
                raise ConfigError(where, _("{path} does not hold a config mapping").format(path=src))
            return data
    raise ConfigError(where, _("no config file {path}").format(path=src))


def _check_config(data: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return to_dict(validate(from_dict(data)))
    except ConfigError as exc:
        raise ConfigError(f"{where}.{exc.field}" if exc.field else where, exc.message) from None


def _label(value: Any) -> Any:
    """A dotted axis's value as its label: scalars as they are, lists and mappings as JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def _axes(raw: Any) -> dict[str, dict[Any, dict[str, Any]]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError("axes", _("expected a mapping of axis -> values"))
    out: dict[str, dict[Any, dict[str, Any]]] = {}
    for axis, values in raw.items():
        axis = str(axis)
        if isinstance(values, list):  # a dotted config path and its values
            if not values:
                raise ConfigError(f"axes.{axis}", _("has no values"))
            labels = {_label(v): {axis: v} for v in values}
            if len(labels) != len(values):
                raise ConfigError(f"axes.{axis}", _("lists a value twice"))
            out[axis] = labels
        elif isinstance(values, Mapping):  # a named axis: label -> overrides
            if not values:
                raise ConfigError(f"axes.{axis}", _("has no values"))
            named: dict[Any, dict[str, Any]] = {}
            for label, ov in values.items():
                if not isinstance(ov, Mapping):
                    raise ConfigError(f"axes.{axis}.{label}", _("expected a mapping of dotted config path -> value"))
                named[str(label)] = {str(k): v for k, v in ov.items()}
            out[axis] = named
        else:
            raise ConfigError(f"axes.{axis}", _("expected a list of values or a mapping of named override sets"))
    return out


def _search(raw: Any) -> tuple[dict[str, dict[str, Any]], int]:
    if raw is None:
        return {}, 0
    if not isinstance(raw, Mapping):
        raise ConfigError("search", _("expected a mapping of dotted config path -> distribution, and n_trials"))
    n = raw.get("n_trials")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError("search.n_trials", _("give the number of sampled points (an integer >= 1)"))
    out: dict[str, dict[str, Any]] = {}
    for key, dist in raw.items():
        if key == "n_trials":
            continue
        where = f"search.{key}"
        if not isinstance(dist, Mapping) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
            raise ConfigError(where, _("expected one of {choices}, e.g. {example}").format(
                choices=", ".join(DISTRIBUTIONS), example="{log_uniform: [1.0e-4, 1.0e-2]}"))
        kind, args = next(iter(dist.items()))
        if kind == "choice":
            if not isinstance(args, list) or not args:
                raise ConfigError(where, _("choice needs a non-empty list"))
        else:
            if not (isinstance(args, list) and len(args) == 2 and all(isinstance(a, (int, float)) for a in args)
                    and args[0] < args[1]):
                raise ConfigError(where, _("{kind} needs [low, high] with low < high").format(kind=kind))
            if kind == "log_uniform" and args[0] <= 0:
                raise ConfigError(where, _("log_uniform needs low > 0"))
            if kind == "int" and not all(isinstance(a, int) for a in args):
                raise ConfigError(where, _("int needs integer bounds"))
        out[str(key)] = {kind: args}
    if not out:
        raise ConfigError("search", _("names no parameter to sample"))
    return out, n


def load_sweep(src: str | Path | Mapping[str, Any], base_dir: Path | None = None) -> SweepSpec:
    """A checked :class:`SweepSpec` from a YAML file, YAML text or a mapping."""
    if isinstance(src, Mapping):
        data: Any = dict(src)
    else:
        p = Path(str(src))
        if "\n" not in str(src) and p.suffix in (".yaml", ".yml", ".json"):
            if not p.is_file():
                raise ConfigError("", _("no sweep file {path}").format(path=src))
            base_dir = base_dir or p.parent
            data = parse_yaml_text(p.read_text(encoding="utf-8"), str(p))
        else:
            try:
                data = yaml.safe_load(str(src))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                raise ConfigError("", _("the sweep is not valid YAML (line {line})").format(line=mark.line + 1)
                                  if mark is not None else _("the sweep is not valid YAML")) from None
    if not isinstance(data, dict):
        raise ConfigError("", _("a sweep is a mapping with name, base, seeds and axes"))
    unknown = sorted(set(map(str, data)) - set(KEYS))
    if unknown:
        raise ConfigError(unknown[0], _("unknown key (expected {keys})").format(keys=", ".join(KEYS)))
    name = str(data.get("name") or "").strip()
    if not name:
        raise ConfigError("name", _("give the sweep a name"))
    if "base" not in data:
        raise ConfigError("base", _("give the base config (a path or a mapping)"))
    base = _check_config(_config_source(data["base"], "base", base_dir), "base")
    before_raw = data.get("before") or []
    if not isinstance(before_raw, list):
        raise ConfigError("before", _("expected a list of configs (paths or mappings)"))
    before = [_check_config(_config_source(b, f"before.{i}", base_dir), f"before.{i}") for i, b in enumerate(before_raw)]
    seeds = data.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, list) or not seeds or len(set(map(str, seeds))) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ConfigError("seeds", _("expected a list of distinct non-negative integers"))
    search, n_search = _search(data.get("search"))
    spec = SweepSpec(name=name, base=base, seeds=seeds, axes=_axes(data.get("axes")), before=before,
                     search=search, n_search=n_search, description=str(data.get("description") or ""))
    if not spec.axes and not spec.search:
        raise ConfigError("axes", _("give at least one axis (or a search)"))
    if "seed" in spec.axes or "seed" in spec.search:
        raise ConfigError("axes.seed", _("seeds are given by the seeds list, not as an axis"))
    for point in spec.points():  # every trial's config is checked before anything runs
        try:
            spec.trial_config(point, seeds[0], _search_low(spec.search))
        except ConfigError as exc:
            raise ConfigError(exc.field, _("{message} (at axes: {point})").format(
                message=exc.message, point=point_label(point))) from None
    return spec


def _search_low(search: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One valid sample of every search parameter (its low end), to check the configs it makes."""
    out: dict[str, Any] = {}
    for k, dist in search.items():
        kind, args = next(iter(dist.items()))
        out[k] = args[0]
    return out
