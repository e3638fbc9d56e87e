"""TransferModel and FusionModel over registry backbones.

Each backbone is wrapped in a :class:`BackboneBody` that owns its own input handling
(resize to the size the architecture needs, normalise with its own mean/std). Why:
the data pipeline then produces one [0, 1] tensor per image that every backbone of a
fusion model can share (one decode per image), and exported models carry their
preprocessing with them.

From scratch is not a separate concept: it is transfer with ``weights: none`` and
``freeze: 0``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Collection, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import (
    BackboneSpec,
    build_body,
    frozen_groups,
    get_backbone,
    input_size,
    load_imagenet_state,
    load_state_into_body,
    load_weights_file,
)
from .config import FusionConfig, RunConfig
from .errors import WeightsError
from .i18n import _

__all__ = [
    "BackboneBody",
    "TransferModel",
    "FusionModel",
    "build_model",
    "freeze_model",
    "load_weights_source",
    "param_groups",
]

log = logging.getLogger(__name__)

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "identity": nn.Identity}


class BackboneBody(nn.Module):
    """A torchvision body (final Linear removed) plus its resize and normalisation."""

    def __init__(self, spec: BackboneSpec, image_size: int):
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.feature_dim = spec.feature_dim
        self.size = input_size(spec, image_size)
        self.body = build_body(spec.name)
        _short_run_bn_momentum(self.body)
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self.frozen = 0
        self.bn_train_frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=False)
        x = (x - self.mean) / self.std
        return self.body(x).flatten(1)

    # freezing ----------------------------------------------------------------
    def freeze_to(self, n: int | str, bn_train_frozen: bool = False) -> None:
        """Freeze the first ``n`` layer groups ("all" = every group); unfreeze the rest."""
        k = frozen_groups(self.spec, n)
        self.frozen = k
        self.bn_train_frozen = bn_train_frozen
        frozen_prefixes = [p for g in self.spec.groups[:k] for p in g.prefixes]
        for pname, p in self.body.named_parameters():
            p.requires_grad_(not _has_prefix(pname, frozen_prefixes))
        self.train(self.training)

    @property
    def fully_frozen(self) -> bool:
        return self.frozen >= len(self.spec.groups)

    def train(self, mode: bool = True) -> "BackboneBody":
        """Like nn.Module.train, but BatchNorm whose parameters are all frozen stays in eval.

        Why: a frozen BN in train mode keeps updating its running statistics from the
        new data, silently changing the "frozen" features (the Keras pitfall).
        """
        super().train(mode)
        if mode and not self.bn_train_frozen:
            for m in self.body.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    params = list(m.parameters(recurse=False))
                    if params and not any(p.requires_grad for p in params):
                        m.eval()
        return self

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


# BatchNorm running statistics must settle within the tens of batches a short run has.
BN_MIN_MOMENTUM = 0.1


def _short_run_bn_momentum(body: nn.Module) -> None:
    """Raise BatchNorm momentum below PyTorch's default 0.1 to 0.1.

    Why: mobilenet_v3 and efficientnet_b5-b7 use 0.01, mnasnet 0.0003 (ImageNet-length
    schedules). A run of 60 batches then keeps over half of the initial statistics
    (0.99**60 = 0.55), so in eval mode a model trained from random weights sees
    activations scaled as if by its untrained init: mobilenet_v3_small scored chance
    (a constant prediction) on validation while fitting its training batches.
    """
    for m in body.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.momentum is not None and m.momentum < BN_MIN_MOMENTUM:
            m.momentum = BN_MIN_MOMENTUM


def _has_prefix(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class TransferModel(nn.Module):
    """Backbone body plus a new linear head for the target classes."""

    def __init__(self, body: BackboneBody, num_classes: int):
        super().__init__()
        self.backbone = body
        self.head = nn.Linear(body.feature_dim, num_classes)

    @property
    def bodies(self) -> list[BackboneBody]:
        return [self.backbone]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.backbone(x)]

    def forward_features(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits from precomputed body features (used by the frozen-feature cache)."""
        return self.head(feats[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def freeze_to(self, n: int | str, bn_train_frozen: bool = False) -> None:
        self.backbone.freeze_to(n, bn_train_frozen)


class FusionModel(nn.Module):
    """``F(x) = phi(sum_i alpha_i P_i f_i(x))`` (mode sum) or ``phi([P_1 f_1; ...; P_n f_n])`` (concat).

    Each backbone feature f_i is projected to the shared dimension d by its own linear
    map P_i. With ``learn_alpha`` the weights are ``softmax(logits)``, so they stay
    positive and sum to one; fixed alphas are normalised to sum to one as well, so a
    slider value reads as a share.
    """

    def __init__(self, bodies: Sequence[BackboneBody], num_classes: int, cfg: FusionConfig):
        super().__init__()
        n = len(bodies)
        self.mode = cfg.mode
        self.learn_alpha = cfg.learn_alpha
        self.bodies_ = nn.ModuleList(bodies)
        self.projections = nn.ModuleList(nn.Linear(b.feature_dim, cfg.shared_dim) for b in bodies)
        init = torch.tensor(cfg.alpha if cfg.alpha is not None else [1.0] * n, dtype=torch.float32)
        init = init / init.sum()
        if cfg.learn_alpha:
            self.alpha_logits = nn.Parameter(torch.log(init.clamp_min(1e-6)))
        else:
            self.register_buffer("alpha_fixed", init)
        self.phi = _ACTIVATIONS[cfg.activation]()
        width = cfg.shared_dim * (n if cfg.mode == "concat" else 1)
        self.classifier = nn.Linear(width, num_classes)

    @property
    def bodies(self) -> list[BackboneBody]:
        return list(self.bodies_)

    def alpha(self) -> torch.Tensor:
        """Current fusion weights (sum to one)."""
        if self.learn_alpha:
            return torch.softmax(self.alpha_logits, dim=0)
        return self.alpha_fixed

    def alpha_list(self) -> list[float]:
        with torch.no_grad():
            return [float(a) for a in self.alpha().detach().cpu()]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [b(x) for b in self.bodies_]

    def fuse(
        self, feats: Sequence[torch.Tensor], drop: int | None = None, keep: Collection[int] | None = None
    ) -> torch.Tensor:
        """The fused representation, with only the backbones in ``keep`` (default: all).

        A backbone left out has its ``P_i f_i`` zeroed: in sum mode it drops out of the
        weighted sum (the other alphas are not renormalised), in concat mode its block of
        the fused vector is zero. ``drop=i`` is ``keep`` = every backbone but i (ablation).
        """
        projected = [p(f) for p, f in zip(self.projections, feats)]
        if drop is not None:
            keep = [i for i in (range(len(projected)) if keep is None else keep) if i != drop]
        if keep is not None:
            kept = set(keep)
            projected = [p if i in kept else torch.zeros_like(p) for i, p in enumerate(projected)]
        if self.mode == "concat":
            z = torch.cat(projected, dim=1)
        else:
            a = self.alpha().to(projected[0].dtype)
            z = sum(a[i] * projected[i] for i in range(len(projected)))
        return self.phi(z)

    def forward_features(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.fuse(feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(self.features(x))

    def freeze_to(self, settings: Sequence[int | str], bn_train_frozen: bool = False) -> None:
        for body, n in zip(self.bodies_, settings):
            body.freeze_to(n, bn_train_frozen)


# --------------------------------------------------------------------------- weights


def _body_state_from_run(ref: str, name: str, runs_root: str | Path | None) -> dict[str, torch.Tensor]:
    """The body weights of backbone ``name`` in a finished run (its head is discarded)."""
    from .runs import RunStore  # local: runs imports nothing from here, keep it that way

    store = RunStore(runs_root)
    try:
        run = store.get(ref)
    except ValueError as exc:
        raise WeightsError(_("weights run:{ref}: {error}").format(ref=ref, error=exc)) from None
    state = run.status().get("state")
    if state != "completed":
        raise WeightsError(_("weights run:{ref}: run {run_id} is {state}, only a completed run can be a source").format(
            ref=ref, run_id=run.id, state=state))
    ckpt = load_weights_file(run.checkpoint_path)  # the final model, the one its results describe
    cfg = run.config_dict()
    names = [b.get("name") for b in cfg.get("backbones", [])]
    if name not in names:
        raise WeightsError(_("weights run:{ref}: run {run_id} has backbones {names}, not {name}").format(
            ref=ref, run_id=run.id, names=", ".join(map(str, names)), name=name))
    idx = names.index(name)
    prefix = "backbone.body." if cfg.get("method") in ("transfer", "distill") else f"bodies_.{idx}.body."
    body = {k[len(prefix):]: v for k, v in ckpt.items() if k.startswith(prefix)}
    if not body:
        raise WeightsError(_("weights run:{ref}: checkpoint of run {run_id} holds no {name} weights").format(
            ref=ref, run_id=run.id, name=name))
    return body


def load_weights_source(body: BackboneBody, source: str, runs_root: str | Path | None = None) -> str:
    """Load ``imagenet`` / ``none`` / ``file:PATH`` / ``run:RUN`` into ``body``; returns a description."""
    source = source.strip()
    if source == "none":
        return "random init"
    if source == "imagenet":
        state = load_imagenet_state(body.name)
        load_state_into_body(body.body, body.spec, state, _("ImageNet weights of {name}").format(name=body.name))
        return f"ImageNet ({body.spec.weights_enum})"
    if source.startswith("file:"):
        path = source[5:]
        state = load_weights_file(path)
        # -> "weights file X does not fit"
        load_state_into_body(body.body, body.spec, state, _("file {name}").format(name=Path(path).name))
        return f"file {path}"
    if source.startswith("run:"):
        ref = source[4:]
        state = _body_state_from_run(ref, body.name, runs_root)
        # The run's state is in body namespace already (the head was never part of it).
        missing, unexpected = body.body.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsError(
                _("weights run:{ref} do not fit {name}: {missing} missing keys, {unexpected} unexpected keys").format(
                    ref=ref, name=body.name, missing=len(missing), unexpected=len(unexpected))
            )
        return f"run {ref}"
    raise WeightsError(_("unknown weights source {source!r}: use imagenet, none, file:PATH or run:RUN").format(source=source))


def build_model(cfg: RunConfig, num_classes: int, runs_root: str | Path | None = None, load_weights: bool = True) -> nn.Module:
    """The model a config describes, weights loaded and groups frozen.

    ``load_weights=False`` builds the architecture only (to load a checkpoint into it).
    """
    bodies = []
    for i, bcfg in enumerate(cfg.backbones):
        body = BackboneBody(get_backbone(bcfg.name), cfg.data.image_size)
        if load_weights:
            try:
                desc = load_weights_source(body, bcfg.weights, runs_root)
            except WeightsError as exc:
                raise WeightsError(f"backbones.{i}.weights: {exc}") from None
            log.info("backbone %d %s: %s", i, bcfg.name, desc)
        bodies.append(body)
    model: nn.Module
    if cfg.method == "distill":
        from .distill.student import StudentModel  # lazy: distill imports this module

        model = StudentModel(bodies[0], num_classes)  # projections: added once the teachers are known
    elif cfg.method == "transfer":
        model = TransferModel(bodies[0], num_classes)
    else:
        model = FusionModel(bodies, num_classes, cfg.fusion)
    freeze_model(model, [b.freeze for b in cfg.backbones], cfg.train.bn_train_frozen)
    return model


def freeze_model(model: nn.Module, settings: Sequence[int | str], bn_train_frozen: bool = False) -> None:
    """Freeze each body of ``model`` to its setting (one per backbone, as ``backbones[i].freeze``)."""
    model.freeze_to(list(settings) if isinstance(model, FusionModel) else settings[0], bn_train_frozen)


def param_groups(model: nn.Module, lr: float, lr_decay: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups with discriminative learning rates.

    New layers (head, projections, alpha) get ``lr``; body group i of k gets
    ``lr * lr_decay ** (k - i)``, so earlier, more generic layers move less.
    """
    groups: dict[float, list[nn.Parameter]] = {}
    body_param_ids: set[int] = set()
    for body in getattr(model, "bodies", []):
        spec = body.spec
        k = len(spec.groups)
        for pname, p in body.body.named_parameters():
            body_param_ids.add(id(p))
            if not p.requires_grad:
                continue
            gi = next((i for i, g in enumerate(spec.groups) if _has_prefix(pname, g.prefixes)), k - 1)
            glr = lr * (lr_decay ** (k - gi)) if lr_decay != 1.0 else lr
            groups.setdefault(glr, []).append(p)
    for p in model.parameters():
        if id(p) not in body_param_ids and p.requires_grad:
            groups.setdefault(lr, []).append(p)
    return [{"params": ps, "lr": glr} for glr, ps in sorted(groups.items(), key=lambda kv: -kv[0])]
