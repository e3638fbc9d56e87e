"""The run configuration's shape: typed dataclasses with defaults and the allowed values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

__all__ = [
    "DataConfig",
    "BackboneConfig",
    "FusionConfig",
    "DistillConfig",
    "TrainConfig",
    "RunConfig",
    "METHODS",
    "FUSION_MODES",
    "ACTIVATIONS",
    "OPTIMIZERS",
    "DEVICES",
]

METHODS = ("transfer", "fusion", "distill")
FUSION_MODES = ("sum", "concat")
ACTIVATIONS = ("relu", "gelu", "tanh", "identity")
OPTIMIZERS = ("adam", "adamw", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class DataConfig:
    dataset: str = "digits"  # built-in (digits|mnist5k|shapes), torchvision name, or folder/zip under the data root
    classes: list[Union[int, str]] | None = None  # subset, by index or name, in this order; None = all
    train_per_class: int | None = None  # few-shot: at most this many training images per class
    val_fraction: float = 0.2  # share of each class held out for validation
    image_size: int = 32  # square side the images are resized to
    augment: bool = False  # light random affine on training images
    shapes_classes: int = 6  # number of classes of the synthetic "shapes" dataset
    shapes_per_class: int = 120  # images per class of the synthetic "shapes" dataset


@dataclass
class BackboneConfig:
    name: str = "resnet18"  # a registry name (python -m transfer_core backbones)
    weights: str = "none"  # imagenet | none | file:PATH | run:RUN
    freeze: Union[int, str] = 0  # "all", 0 (train everything) or the number of leading groups frozen


@dataclass
class FusionConfig:
    mode: str = "sum"  # sum (alpha-weighted) | concat
    shared_dim: int = 128  # width of the shared space every backbone is projected to
    alpha: list[float] | None = None  # one weight per backbone; None = uniform
    learn_alpha: bool = True  # learn alpha (softmax-normalised) instead of keeping it fixed
    activation: str = "relu"  # phi: relu | gelu | tanh | identity


@dataclass
class DistillConfig:
    """method distill: completed runs (the teachers) teach the one backbone of ``backbones`` (the student)."""

    teachers: list[str] = field(default_factory=list)  # "run:REF" completed runs on the same classes
    temperature: float = 4.0  # T: softens teacher and student distributions alike
    weight: float = 0.9  # lambda: loss = (1-lambda) CE(labels) + lambda T^2 KL(teacher_T || student_T)
    teacher_weights: list[float] | None = None  # one weight per teacher; None = equal
    unlabeled: bool = True  # also learn from the dataset's other training images, through the teachers only
    features: bool = False  # also match pooled features to each teacher's (a learned projection where sizes differ)


@dataclass
class TrainConfig:
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw | sgd
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    lr_decay: float | None = None  # body group i of k trains at lr * lr_decay**(k - i); None = the recipe (transfer_core.recipe)
    head_epochs: int | None = None  # epochs training only the new head before the body unfreezes; None = the recipe
    device: str = "auto"  # auto picks cuda -> mps -> cpu
    amp: bool = True  # mixed precision, used on CUDA only
    bn_train_frozen: bool = False  # keep BatchNorm of frozen groups in train mode (off: the Keras pitfall)
    num_workers: int = -1  # DataLoader workers; -1 = auto (0 on CPU/MPS, min(8, CPUs - 1) on CUDA); 0 = in the training thread
    threads: int = 0  # torch CPU threads; 0 = leave torch's default
    feature_cache: bool = True  # fully frozen backbones: extract features once (cached on disk), train the head on them
    compile: bool = False  # torch.compile the model for training (first epoch slower; falls back to eager if it fails)
    checkpoint_every_s: float = 60.0  # checkpoint.pt at most this often, and always for a new best, the last epoch, Stop; 0 = every epoch
    checkpoint_best: bool = True  # also write checkpoint.pt + best.pt for every new best (a sweep's trials: off, their final model counts)


@dataclass
class RunConfig:
    seed: int = 0
    name: str = ""  # free label shown in run lists
    method: str = "transfer"  # transfer | fusion | distill
    data: DataConfig = field(default_factory=DataConfig)
    backbones: list[BackboneConfig] = field(default_factory=lambda: [BackboneConfig()])
    fusion: FusionConfig = field(default_factory=FusionConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
