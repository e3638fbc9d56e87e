"""Training: from a config to a finished run folder.

``device`` (where it computes), ``loaders`` (how batches reach the model),
``feature_key`` / ``feature_cache`` (frozen-backbone features, extracted once),
``trainer`` (the fit loop), ``callbacks`` (the hook shape, metrics and progress writers),
``checkpoint`` (checkpoints, best.pt, resume), ``tensorboard`` (optional mirror),
``lifecycle`` (run_training / resume_training against the run store) and ``lr_finder``.
"""

from ..errors import USER_ERRORS
from .callbacks import Callback, CheckpointError, Diverged, MetricsWriter, ProgressPublisher, StopTraining
from .checkpoint import Checkpointer, load_checkpoint
from .device import auto_workers, gpu_count, seed_everything, select_device
from .feature_cache import (
    AUGMENT_NOTE,
    FeatureSet,
    cache_decision,
    cache_dir,
    cache_size_bytes,
    clear_cache,
    extract_features,
    prepare_features,
)
from .feature_key import FEATURES_VERSION, feature_key, weights_identity
from .lifecycle import prepare, resume_training, run_training
from .loaders import image_batches, to_model_input
from .lr_finder import default_iterations, find_lr, suggest_lr
from .tensorboard import TensorBoardLogger
from .trainer import Trainer, TrainResult

__all__ = [
    # the fit and the run lifecycle
    "Trainer",
    "TrainResult",
    "prepare",
    "run_training",
    "resume_training",
    "load_checkpoint",
    "StopTraining",
    "Diverged",
    "CheckpointError",
    "USER_ERRORS",
    # callbacks
    "Callback",
    "MetricsWriter",
    "Checkpointer",
    "ProgressPublisher",
    "TensorBoardLogger",
    # device
    "select_device",
    "gpu_count",
    "auto_workers",
    "seed_everything",
    # the feature cache
    "FEATURES_VERSION",
    "AUGMENT_NOTE",
    "FeatureSet",
    "cache_dir",
    "cache_size_bytes",
    "clear_cache",
    "cache_decision",
    "weights_identity",
    "feature_key",
    "extract_features",
    "prepare_features",
    "image_batches",
    "to_model_input",
    # the learning-rate finder
    "find_lr",
    "suggest_lr",
    "default_iterations",
]
