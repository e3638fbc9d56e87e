"""Teaching insights on a finished run: what the model looked at, what each backbone brought,
how the classes lie in feature space, which images it gets wrong, and how runs compare.

Everything works on a :class:`~transfer_core.predict.LoadedRun` (the run's own model,
classes and preprocessing) and the run's :class:`~transfer_core.data.DataBundle` (its own
validation split), so what a page shows is what the run saw; nothing here writes to the
run store. The rooms: :mod:`.val_pass` (the one shared pass over the validation images),
:mod:`.gradcam`, :mod:`.fusion` (contributions, drop-one ablation, disagreement, α),
:mod:`.embeddings` (PCA / t-SNE), and :mod:`.galleries` (confusion cells,
top losses). Comparing runs from their configs alone is :mod:`transfer_core.compare` (no torch).

The submodules are imported here, not on first use: ``val_pass`` and ``embeddings`` are
both a module and its main function, and importing the modules first keeps
``insights.val_pass`` the function whatever is imported later.
"""

from __future__ import annotations

from .embeddings import EMBED_METHODS, embeddings
from .fusion import ablation, contributions, disagreement, mean_contributions
from .galleries import confusion_cell_images, confusion_from_pass, top_losses
from .gradcam import CamTarget, cam_layers, cam_overlay, cam_target, enlarge, gradcam_maps
from .val_pass import ValPass, backbone_names, val_image, val_pass

__all__ = [
    "ValPass",
    "val_pass",
    "val_image",
    "backbone_names",
    "CamTarget",
    "cam_target",
    "gradcam_maps",
    "cam_overlay",
    "contributions",
    "embeddings",
    "EMBED_METHODS",
    "ablation",
    "disagreement",
    "confusion_from_pass",
    "confusion_cell_images",
    "top_losses",
    "cam_layers",
    "enlarge",
    "mean_contributions",
]
