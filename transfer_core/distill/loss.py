"""The distillation loss (Hinton et al., 2015) with a mask for images that have no label.

``loss = (1 - λ) · CE(student, labels) + λ · T² · KL(teacher_T ‖ student_T)``, where
``teacher_T`` is the teachers' softened distribution (see
:func:`transfer_core.distill.targets.soft_targets`) and ``student_T = softmax(z / T)``.
The T² keeps the gradients of the soft part on the scale of the hard part when T
changes. Images without a label (label -1, the unlabeled pool) contribute only to the
KL term; CE is the mean over the labeled images of the batch (0 when it has none).
With ``features``, ``λ · mean_i w_i · MSE(P_i s, t_i)`` is added: the student's pooled
features ``s`` projected to each teacher's (standardised) penultimate features ``t_i``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["distill_loss"]


def distill_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    targets: torch.Tensor,
    temperature: float,
    weight: float,
    feature_pairs: Sequence[tuple[torch.Tensor, torch.Tensor, float]] = (),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(total loss, its parts ``ce``, ``kd`` and ``feat`` as detached scalars) for one batch.

    ``labels`` holds -1 for unlabeled images; ``targets`` is the batch's rows of the
    teachers' softened distribution; ``feature_pairs`` are (projected student features,
    teacher features, teacher weight).
    """
    logits = logits.float()
    labeled = labels >= 0
    if bool(labeled.any()):
        ce = F.cross_entropy(logits[labeled], labels[labeled])
    else:
        ce = logits.sum() * 0.0  # keeps the graph: a batch of unlabeled images only
    log_p = F.log_softmax(logits / temperature, dim=1)
    kd = F.kl_div(log_p, targets.float(), reduction="batchmean") * (temperature**2)
    total = (1.0 - weight) * ce + weight * kd
    parts = {"ce": ce.detach(), "kd": kd.detach()}
    if feature_pairs:
        feat = sum(w * F.mse_loss(s.float(), t.float()) for s, t, w in feature_pairs)
        total = total + weight * feat
        parts["feat"] = feat.detach()
    return total, parts
