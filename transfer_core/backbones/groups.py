"""Layer groups: how each family's body is cut into stem, stages and tail for freezing.

Like fastai's splitters: a family-specific *layout* names the modules of each group
(:func:`family_layout`, with :func:`generic_layout` for families without one), and
:func:`make_groups` turns a layout into :class:`LayerGroup` s that cover every body
parameter exactly once. :func:`frozen_groups`, :func:`trainable_params` and
:func:`group_index_of` answer freezing questions from a spec without building anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Union

from torch import nn

from ..i18n import _

if TYPE_CHECKING:
    from .spec import BackboneSpec

__all__ = [
    "Freeze",
    "LayerGroup",
    "family_layout",
    "generic_layout",
    "make_groups",
    "param_counts",
    "owns",
    "group_index_of",
    "frozen_groups",
    "trainable_params",
]

Freeze = Union[int, str]
Layout = list[tuple[str, tuple[str, ...]]]

_TARGET_CHUNKS = 4  # trunk stages are merged into about this many groups (3..8 groups in all)


@dataclass(frozen=True)
class LayerGroup:
    """A contiguous slice of the body that is frozen or unfrozen as one unit."""

    name: str  # "stem", "layer1", "features.4-7", "classifier", ...
    prefixes: tuple[str, ...]  # parameter-name prefixes in the torchvision model namespace
    num_params: int


def param_counts(module: nn.Module) -> dict[str, int]:
    """Parameter name -> element count, in registration order."""
    return {n: p.numel() for n, p in module.named_parameters()}


def owns(prefix: str, param_name: str) -> bool:
    """Whether ``prefix`` is the parameter itself or a module path above it."""
    return param_name == prefix or param_name.startswith(prefix + ".")


def _children_with_params(model: nn.Module, path: str) -> list[str]:
    module = model.get_submodule(path) if path else model
    out = []
    for child_name, child in module.named_children():
        if any(True for _p in child.parameters()):
            out.append(f"{path}.{child_name}" if path else child_name)
    return out


def _short(path: str) -> str:
    """Last path component, without a word prefix: 'encoder_layer_3' -> '3'."""
    last = path.rsplit(".", 1)[-1]
    digits = last.rsplit("_", 1)[-1]
    return digits if digits.isdigit() and not last.isdigit() else last


def _chunk(paths: list[str], k: int, container: str) -> Layout:
    """Split consecutive units into ``k`` groups; larger groups last (deep stages are wider)."""
    if not paths:
        return []
    k = max(1, min(k, len(paths)))
    base, extra = divmod(len(paths), k)
    sizes = [base + (1 if i >= k - extra else 0) for i in range(k)]
    out, start = [], 0
    for size in sizes:
        part = paths[start : start + size]
        start += size
        first, last = _short(part[0]), _short(part[-1])
        span = first if first == last else f"{first}-{last}"
        out.append((f"{container}.{span}" if container else span, tuple(part)))
    return out


def _tail_classifier(model: nn.Module) -> Layout:
    """Penultimate Linear layers kept in the body (VGG fc6/fc7, MobileNetV3, MaxViT) form a group."""
    classifier = getattr(model, "classifier", None)
    if classifier is not None and any(isinstance(m, nn.Linear) for m in classifier.modules()):
        return [("classifier", ("classifier",))]
    return []


def _split_at_pools(model: nn.Module, container: str) -> Layout:
    """VGG / AlexNet / SqueezeNet: one group per resolution, i.e. split ``features`` at max-pools."""
    seq = model.get_submodule(container)
    groups: list[list[str]] = []
    current: list[str] = []
    for idx, module in seq.named_children():
        if any(True for _p in module.parameters()):
            current.append(f"{container}.{idx}")
        if isinstance(module, nn.MaxPool2d) and current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    out = []
    for i, part in enumerate(groups):
        first, last = _short(part[0]), _short(part[-1])
        label = "stem" if i == 0 else (f"{container}.{first}" if first == last else f"{container}.{first}-{last}")
        out.append((label, tuple(part)))
    return out


def _stem_and_trunk(model: nn.Module, container: str, n_stem: int = 1) -> Layout:
    """Stem = first ``n_stem`` units of ``container``; the rest chunked into ~4 stage groups."""
    units = _children_with_params(model, container)
    return [("stem", tuple(units[:n_stem]))] + _chunk(units[n_stem:], _TARGET_CHUNKS, container)


def family_layout(model: nn.Module, family: str) -> Layout:
    """Family-specific group layout; parameters it leaves out are merged into neighbours later."""
    if family == "resnet":
        return [("stem", ("conv1", "bn1"))] + [(f"layer{i}", (f"layer{i}",)) for i in range(1, 5)]
    if family == "regnet":
        blocks = _children_with_params(model, "trunk_output")
        return [("stem", ("stem",))] + [(_short(b), (b,)) for b in blocks]
    if family == "shufflenet":
        return [("stem", ("conv1",))] + [(m, (m,)) for m in ("stage2", "stage3", "stage4", "conv5")]
    if family == "googlenet":
        return [
            ("stem", ("conv1", "conv2", "conv3")),
            ("inception3", ("inception3a", "inception3b")),
            ("inception4", tuple(f"inception4{c}" for c in "abcde")),
            ("inception5", ("inception5a", "inception5b")),
        ]
    if family == "inception":
        return [
            ("stem", ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")),
            ("Mixed_5", ("Mixed_5b", "Mixed_5c", "Mixed_5d")),
            ("Mixed_6", tuple(f"Mixed_6{c}" for c in "abcde")),
            ("Mixed_7", ("Mixed_7a", "Mixed_7b", "Mixed_7c")),
        ]
    if family == "densenet":
        out = [("stem", ("features.conv0", "features.norm0"))]
        for i in range(1, 5):
            parts = tuple(p for p in (f"features.denseblock{i}", f"features.transition{i}") if _has(model, p))
            out.append((f"denseblock{i}", parts))
        return out
    if family in ("vgg", "alexnet", "squeezenet"):
        return _split_at_pools(model, "features") + _tail_classifier(model)
    if family in ("mobilenet", "efficientnet", "convnext", "swin"):
        return _stem_and_trunk(model, "features") + _tail_classifier(model)
    if family == "mnasnet":
        # layers 0-7: stem conv + first depthwise-separable block; 8-13: the six stacks.
        units = _children_with_params(model, "layers")
        stem = tuple(u for u in units if int(_short(u)) <= 7)
        stacks = [u for u in units if 8 <= int(_short(u)) <= 13]
        return [("stem", stem)] + _chunk(stacks, _TARGET_CHUNKS, "layers")
    if family == "vit":
        layers = _children_with_params(model, "encoder.layers")
        stem = ("class_token", "conv_proj", "encoder.pos_embedding")
        return [("stem", stem)] + _chunk(layers, _TARGET_CHUNKS, "encoder.layers")
    if family == "maxvit":
        blocks = _children_with_params(model, "blocks")
        return [("stem", ("stem",))] + [(b, (b,)) for b in blocks] + _tail_classifier(model)
    return generic_layout(model)


def _has(model: nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
        return True
    except AttributeError:
        return False


def generic_layout(model: nn.Module) -> Layout:
    """Fallback for architectures without a layout: stem + ~4 chunks of the trunk.

    The trunk is the shallowest container with at least four parameter-bearing
    children (the model itself, ``features``, ``encoder.layers``, ...). Everything
    registered before it is the stem (else its first child is); what follows joins
    the last chunk.
    """
    counts = param_counts(model)
    trunk, units = "", _children_with_params(model, "")
    level = [""]
    while level and len(units) < 4:
        found = next(((p, c) for p in level if len(c := _children_with_params(model, p)) >= 4), None)
        if found is not None:
            trunk, units = found
            break
        level = [c for p in level for c in _children_with_params(model, p)]
    if not units:
        raise RuntimeError(f"{type(model).__name__} has no parameters")
    names = list(counts)
    first = next(i for i, n in enumerate(names) if owns(units[0], n))
    stem: dict[str, None] = {}
    for name in names[:first]:
        parts = name.split(".")
        # shortest prefix of the name that is not an ancestor of the trunk
        depth = next(d for d in range(1, len(parts) + 1) if not owns(".".join(parts[:d]), trunk))
        stem[".".join(parts[:depth])] = None
    if stem:
        return [("stem", tuple(stem))] + _chunk(units, _TARGET_CHUNKS, trunk)
    return [("stem", (units[0],))] + _chunk(units[1:], _TARGET_CHUNKS, trunk)


def make_groups(body: nn.Module, layout: Layout) -> tuple[LayerGroup, ...]:
    """Turn a layout into groups that cover every body parameter exactly once.

    Parameters the layout does not name (final norms such as ViT's ``encoder.ln``,
    Swin's ``norm``, DenseNet's ``norm5``; loose tensors) join the group of the
    parameter registered just before them, so the layouts stay short and nothing is
    silently left trainable when everything is frozen.
    """
    counts = param_counts(body)
    names = list(counts)
    layout = [(label, tuple(p for p in prefixes if p)) for label, prefixes in layout if prefixes]
    owner: dict[str, int] = {}
    for name in names:
        hits = [gi for gi, (_label, prefixes) in enumerate(layout) if any(owns(p, name) for p in prefixes)]
        if len(hits) > 1:
            raise RuntimeError(f"parameter {name} is claimed by groups {[layout[h][0] for h in hits]}")
        if hits:
            owner[name] = hits[0]
    if not owner:
        raise RuntimeError("layout covers no parameter")
    # Leftovers: attach to the previous covered parameter's group (or the next one at the start).
    assigned: dict[str, int] = {}
    last: int | None = None
    pending: list[str] = []
    for name in names:
        if name in owner:
            last = owner[name]
            for p in pending:
                assigned[p] = last
            pending = []
        elif last is None:
            pending.append(name)
        else:
            assigned[name] = last
    extra: dict[int, list[str]] = {}
    for name, gi in assigned.items():
        extra.setdefault(gi, []).append(_widest_prefix(name, gi, assigned, names))
    groups = []
    for gi, (label, prefixes) in enumerate(layout):
        all_prefixes = tuple(prefixes) + tuple(dict.fromkeys(extra.get(gi, [])))
        n = sum(c for name, c in counts.items() if owner.get(name, assigned.get(name)) == gi)
        if n == 0:
            continue  # a layout entry for a stage this variant does not have
        groups.append(LayerGroup(name=label, prefixes=all_prefixes, num_params=n))
    return tuple(groups)


def _widest_prefix(name: str, gi: int, assigned: Mapping[str, int], names: list[str]) -> str:
    """Shortest module path above ``name`` whose parameters are all leftovers of group ``gi``."""
    parts = name.split(".")
    for depth in range(1, len(parts)):
        prefix = ".".join(parts[:depth])
        under = [n for n in names if owns(prefix, n)]
        if all(assigned.get(n) == gi for n in under):
            return prefix
    return name



def group_index_of(spec: BackboneSpec, param_name: str) -> int:
    """Index of the group that owns a body parameter (name in the torchvision namespace)."""
    for i, group in enumerate(spec.groups):
        if any(owns(p, param_name) for p in group.prefixes):
            return i
    raise KeyError(f"{param_name!r} is not a parameter of the {spec.name} body")


def frozen_groups(spec: BackboneSpec, freeze: Freeze) -> int:
    """Number of leading groups frozen: ``"all"`` -> every group, else ``0..len(groups)``."""
    k = len(spec.groups)
    if isinstance(freeze, str):
        if freeze.strip().lower() == "all":
            return k
        raise ValueError(_("freeze must be 'all' or a number 0..{k}, got {value!r}").format(k=k, value=freeze))
    if isinstance(freeze, bool) or not isinstance(freeze, int) or not 0 <= freeze <= k:
        raise ValueError(_("{name} has {k} layer groups: freeze must be 0..{k} or 'all', got {value!r}").format(
            name=spec.name, k=k, value=freeze))
    return freeze


def trainable_params(spec: BackboneSpec, freeze: Freeze) -> int:
    """Body parameters left trainable with the first ``freeze`` groups frozen (head excluded)."""
    n = frozen_groups(spec, freeze)
    return spec.num_params - sum(g.num_params for g in spec.groups[:n])
