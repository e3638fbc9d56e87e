"""The fine-tuning recipe for pretrained weights: lower learning rates near the input, an optional head warm-up.

Fine-tuning a pretrained body under a freshly initialised head distorts its features: the
head's first, large and random gradients flow into the body (Kumar et al., ICLR 2022,
"Fine-Tuning can Distort Pretrained Features": linear probe, then fine-tune, LP-FT).
fastai's ``fine_tune`` does the same by default (``freeze_epochs=1``, then unfreeze with
discriminative rates). Two settings carry it, and a config leaves them empty (None) to
get the recipe:

* ``train.head_epochs``: epochs that train only the new layers (head, fusion projections,
  α) on the frozen body, on cached features where the feature cache applies; then the
  configured groups unfreeze.
* ``train.lr_decay``: body group i of k trains at ``lr * lr_decay ** (k - i)``, so the
  layers nearest the input move least.

:func:`resolve` fills them: with pretrained weights (any backbone's weights other than
``none``) :data:`HEAD_EPOCHS` (at most half the epochs) and :data:`LR_DECAY`; from
scratch 0 and 1.0, today's behaviour (there is nothing to protect). Values a user gave
always win.

Chosen from measurements (bench/recipe_table.py: the guided demo's target task, seeds
0-4, final val accuracy, mean; README "Fine-tuning pretrained weights"): at lr 1e-3 full
fine-tuning (freeze 0) scored 51.2 % with neither, 58.0 % with a 3-epoch warm-up alone,
78.0 % with lr_decay 0.5 alone and 77.8 % with both; at lr 3e-3, 79.2 % with lr_decay
alone and 73.3 % with both. The lower body rate carries the gain and the warm-up cost
accuracy at the higher rate, so the default is lr_decay 0.5 and no warm-up;
``train.head_epochs`` stays an option (and a lesson: the curves mark where the body
unfroze).
"""

from __future__ import annotations

from dataclasses import replace

from .config import RunConfig
from .i18n import _, ngettext

__all__ = ["HEAD_EPOCHS", "LR_DECAY", "pretrained", "resolve", "describe"]

HEAD_EPOCHS = 0  # measured: no gain on the built-in tasks once the body rate is lower (see above)
LR_DECAY = 0.5


def pretrained(cfg: RunConfig) -> bool:
    """Whether any backbone starts from weights (ImageNet, a file, a run) rather than random init."""
    return any(str(b.weights).strip() != "none" for b in cfg.backbones)


def _probe_only(cfg: RunConfig) -> bool:
    """Every body frozen whole: no body group ever trains."""
    return all(str(b.freeze) == "all" for b in cfg.backbones)


def _default_head_epochs(cfg: RunConfig) -> int:
    if not HEAD_EPOCHS or not pretrained(cfg) or _probe_only(cfg):
        return 0
    return min(HEAD_EPOCHS, cfg.train.epochs // 2)


def resolve(cfg: RunConfig) -> RunConfig:
    """``cfg`` with ``train.head_epochs`` and ``train.lr_decay`` filled where they are None."""
    t = cfg.train
    head = t.head_epochs if t.head_epochs is not None else _default_head_epochs(cfg)
    decay = t.lr_decay if t.lr_decay is not None else (LR_DECAY if pretrained(cfg) else 1.0)
    if head == t.head_epochs and decay == t.lr_decay:
        return cfg
    return replace(cfg, train=replace(t, head_epochs=head, lr_decay=decay))


def describe(cfg: RunConfig) -> str | None:
    """One line saying what the recipe does to ``cfg`` and why (current language); None when it changes nothing."""
    r, t = resolve(cfg).train, cfg.train
    head = bool(t.head_epochs is None and r.head_epochs)
    decay = bool(t.lr_decay is None and r.lr_decay != 1.0 and not _probe_only(cfg))
    if head and decay:
        text = ngettext(
            "Pretrained weights: the new head trains alone for {n} epoch, then the body unfreezes; each layer group "
            "nearer the input learns at {decay:g}x the rate of the next, so the random new head does not wreck what "
            "they learned.",
            "Pretrained weights: the new head trains alone for {n} epochs, then the body unfreezes; each layer group "
            "nearer the input learns at {decay:g}x the rate of the next, so the random new head does not wreck what "
            "they learned.", r.head_epochs)
    elif head:
        text = ngettext(
            "Pretrained weights: the new head trains alone for {n} epoch, then the body unfreezes, so the random new "
            "head does not wreck what they learned.",
            "Pretrained weights: the new head trains alone for {n} epochs, then the body unfreezes, so the random new "
            "head does not wreck what they learned.", r.head_epochs)
    elif decay:
        text = _("Pretrained weights: each layer group nearer the input learns at {decay:g}x the rate of the next, "
                 "so the random new head does not wreck what they learned.")
    else:
        return None
    return text.format(n=r.head_epochs, decay=r.lr_decay)
