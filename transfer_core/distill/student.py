"""The student of a distillation: a :class:`~transfer_core.models.TransferModel` (one body,
a new head) that, with ``distill.features``, also holds one projection per teacher from its
pooled features to that teacher's penultimate features (as timm's feature distillation).

The projections serve training only: ``forward`` is the TransferModel's, so the student
predicts, exports and serves as a source or a teacher like any transfer run. They are in
the checkpoint (a resume keeps them) and are rebuilt from its shapes on loading, so the
folder stays self-contained even when the teachers are gone.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from ..models import BackboneBody, TransferModel

__all__ = ["StudentModel", "inference_parameters"]


class StudentModel(TransferModel):
    def __init__(self, body: BackboneBody, num_classes: int, teacher_dims: Sequence[int] = ()):
        super().__init__(body, num_classes)
        self.feature_proj = nn.ModuleList(nn.Linear(body.feature_dim, int(d)) for d in teacher_dims)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # Rebuild the projections from the checkpoint's shapes before the children load.
        shapes: dict[int, torch.Size] = {}
        for key, t in state_dict.items():
            rest = key[len(prefix):] if key.startswith(prefix) else None
            if rest and rest.startswith("feature_proj.") and rest.endswith(".weight"):
                shapes[int(rest.split(".")[1])] = t.shape
        if shapes and len(self.feature_proj) != len(shapes):
            self.feature_proj = nn.ModuleList(nn.Linear(int(shapes[i][1]), int(shapes[i][0])) for i in range(len(shapes)))
        super()._load_from_state_dict(state_dict, prefix, *args)


def inference_parameters(model: nn.Module) -> int:
    """Parameters a model predicts with (a student's training-only projections excluded)."""
    skip = {id(p) for p in model.feature_proj.parameters()} if isinstance(model, StudentModel) else set()
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)
