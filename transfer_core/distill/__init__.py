"""Knowledge distillation: completed runs (transfer, fusion or distill) teach a small student.

``teachers`` (which runs teach, checked before anything trains), ``targets`` (their
outputs for every training image, computed once and cached), ``loss`` (the
(1-λ)·CE + λ·T²·KL loss with unlabeled images), ``student`` (the student model),
``trainer`` (the fit loop) and ``versus`` (student against its teachers: accuracy,
parameters, exported size, speed, and the sentence).
"""

from .loss import distill_loss
from .targets import TeacherOutputs, soft_targets, teacher_outputs
from .teachers import Teacher, candidate_teachers, resolve_teachers, teacher_classes

__all__ = [
    "distill_loss",
    "TeacherOutputs",
    "soft_targets",
    "teacher_outputs",
    "Teacher",
    "candidate_teachers",
    "resolve_teachers",
    "teacher_classes",
]
