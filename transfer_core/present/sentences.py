"""The sentences a presentation and the HTML report say about runs, made from their numbers.

One place for the wording: the report (:mod:`transfer_core.report`), the Present page and
both decks call these, so a sentence reads the same on screen, in the file sent afterwards
and in the report. Plain strings; a caller that wants emphasis (the report's ``<b>``)
passes ``em`` and ``esc``. No Streamlit, no torch.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

__all__ = [
    "duration_text",
    "KIND_TEXT", "pct", "class_text", "dataset_noun", "labels_text", "weights_text", "backbone_text", "verdict",
    "weakest", "join_words",
]

KIND_TEXT = {
    "scratch": "trained from scratch (random initial weights)",
    "transfer": "transfer learning (starts from pretrained weights)",
    "fusion": "feature fusion (several backbones combined)",
    "distill": "knowledge distillation (a student learns from teachers' answers)",
}
#: Built-in datasets whose classes are digits: their classes read "digits 0–4".
_DIGIT_SETS = {"digits", "mnist5k", "mnist", "emnist", "usps", "svhn"}


def _plain(s: str) -> str:
    return s


def pct(x: float | None) -> str:
    """An accuracy as the Results page shows it: 0.9444 -> "94.4%"; "—" when unknown."""
    return "—" if x is None else f"{x:.1%}"


def join_words(items: Sequence[str]) -> str:
    """["a"] -> "a", ["a", "b"] -> "a and b", ["a", "b", "c"] -> "a, b and c"."""
    items = [str(i) for i in items]
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def dataset_noun(dataset: str) -> str:
    """What the images are: "digits" for the digit sets, else the dataset's name."""
    name = str(dataset or "?")
    return "digits" if name.lower() in _DIGIT_SETS else name


def _ranges(values: list[int]) -> str:
    """[0, 1, 2, 3, 4] -> "0–4", [0, 2, 3] -> "0, 2 and 3"; runs of three or more become ranges."""
    out: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        if j - i >= 2:
            out.append(f"{values[i]}–{values[j]}")
        else:
            out.extend(str(v) for v in values[i: j + 1])
        i = j + 1
    return join_words(out)


def class_text(dataset: str, classes: Sequence[Any] | None, with_noun: bool = True) -> str:
    """ "digits 0–4", "shapes: circle, square and star", "all classes of cifar10" (``with_noun``
    False: "0–4")."""
    noun = dataset_noun(dataset)
    if not classes:
        return f"all classes of {noun}" if with_noun else "all classes"
    if all(isinstance(c, int) or (isinstance(c, str) and c.isdigit()) for c in classes):
        values = [int(c) for c in classes]
        text = _ranges(values) if values == sorted(values) else join_words([str(v) for v in values])
        if noun == "digits":
            return f"digits {text}" if with_noun else text
        return f"{noun} classes {text}" if with_noun else text
    names = [str(c) for c in classes]
    if len(names) > 6:
        text = f"{len(names)} classes ({', '.join(names[:4])}, …)"
        return f"{noun}: {text}" if with_noun else text
    return f"{noun}: {join_words(names)}" if with_noun else join_words(names)


def labels_text(per_class: Any) -> str:
    """ "from 10 labels each", "from 1 label each", or "from all their training images"."""
    if per_class in (None, "", 0):
        return "from all their training images"
    n = int(per_class)
    return f"from {n} label{'s' if n != 1 else ''} each"


def weights_text(weights: str, source: Mapping[str, Any] | None = None) -> str:
    """Where a backbone starts: "random init", "ImageNet", "pretrained on digits 0–4 (run NAME)",
    "file NAME". ``source``: the config of the run named by ``run:...`` (when it was found)."""
    w = str(weights or "none").strip()
    if w == "none":
        return "random init"
    if w == "imagenet":
        return "pretrained on ImageNet"
    if w.startswith("run:"):
        ref = w[4:]
        if source:
            data = source.get("data") or {}
            return f"pretrained on {class_text(data.get('dataset', '?'), data.get('classes'))} (run {ref})"
        return f"pretrained by run {ref}"
    if w.startswith("file:"):
        return f"weights from file {w[5:].rsplit('/', 1)[-1]}"
    return w


def backbone_text(cfg: Mapping[str, Any]) -> str:
    """Each backbone with its start and what it freezes: "resnet18 (ImageNet, first 3 layer groups frozen)"."""
    parts = []
    for b in cfg.get("backbones") or []:
        w = str(b.get("weights", "?"))
        src = {"none": "random init", "imagenet": "ImageNet"}.get(w, w.replace("run:", "run ").replace("file:", "file "))
        fr = b.get("freeze", 0)
        frozen = ("every layer trained" if fr in (0, "0") else "body frozen, only the new layers trained" if fr == "all"
                  else f"first {fr} layer groups frozen")
        parts.append(f"{b.get('name', '?')} ({src}, {frozen})")
    return "; ".join(parts)


def weakest(per_class: Sequence[Mapping[str, Any]], conf: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The class recognised least often: ``{"name", "recall", "confused_with"}`` (None for one class or none)."""
    if not per_class or len(per_class) < 2:
        return None
    weak = min(per_class, key=lambda r: r.get("recall", 0.0))
    name = str(weak.get("class"))
    out: dict[str, Any] = {"name": name, "recall": float(weak.get("recall", 0.0)), "confused_with": None}
    if conf and name in [str(x) for x in conf["labels"]]:
        labels = [str(x) for x in conf["labels"]]
        i = labels.index(name)
        row = [(v, j) for j, v in enumerate(conf["matrix"][i]) if j != i]
        if row and max(row)[0] > 0:
            out["confused_with"] = labels[max(row)[1]]
    return out


def verdict(acc: float | None, n_classes: int | None, per_class: Sequence[Mapping[str, Any]] | None,
            conf: Mapping[str, Any] | None, em: Callable[[str], str] = _plain, esc: Callable[[str], str] = _plain,
            lead: bool = True) -> str:
    """One plain sentence for the reader in a hurry: the accuracy against guessing and the weakest class."""
    if acc is None:
        return ""
    text = (f"{em('In short:')} the model" if lead else "The model") + \
        f" answers correctly on {em(f'{acc:.1%}')} of images it never saw"
    if n_classes:
        text += f" ({n_classes} classes: guessing would score {1 / n_classes:.1%})"
    text += "."
    weak = weakest(per_class or [], conf)
    if weak:
        text += f" It is weakest on class {em(esc(weak['name']))} (recognised {weak['recall']:.0%} of the time"
        if weak["confused_with"] is not None:
            text += f", most often taken for {em(esc(weak['confused_with']))}"
        text += ")."
    return text


def duration_text(status: Mapping[str, Any]) -> str:
    """How long a run trained (m:ss or h:mm:ss), from its status; "" when unknown."""
    took = float(status.get("ended") or 0) - float(status.get("started") or 0)
    if took <= 0:
        return ""
    s = int(round(took))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
