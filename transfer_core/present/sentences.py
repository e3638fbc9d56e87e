"""The sentences a presentation and the HTML report say about runs, made from their numbers.

One place for the wording: the report (:mod:`transfer_core.report`), the Present page and
both decks call these, so a sentence reads the same on screen, in the file sent afterwards
and in the report. Plain strings; a caller that wants emphasis (the report's ``<b>``)
passes ``em`` and ``esc``. No Streamlit, no torch.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from ..compare import kind_label
from ..i18n import N_, _, gettext, ngettext

__all__ = [
    "duration_text",
    "KIND_TEXT", "KIND_SHORT", "kind_text", "kind_short", "kind_word", "pct", "class_text",
    "dataset_noun", "labels_text", "weights_text", "start_text", "backbone_text", "verdict", "weakest", "join_words",
    "list_words", "then", "semicolons",
]

#: What each kind of run does (marked with N_: translate with :func:`kind_text` where shown).
KIND_TEXT = {
    "scratch": N_("trained from scratch (random initial weights)"),
    "transfer": N_("transfer learning (starts from pretrained weights)"),
    "fusion": N_("feature fusion (several backbones combined)"),
    "distill": N_("knowledge distillation (a student learns from teachers' answers)"),
}
#: The same, without the explanation in brackets.
KIND_SHORT = {
    "scratch": N_("trained from scratch"),
    "transfer": N_("transfer learning"),
    "fusion": N_("feature fusion"),
    "distill": N_("knowledge distillation"),
}

#: Built-in datasets whose classes are digits: their classes read "digits 0–4".
_DIGIT_SETS = {"digits", "mnist5k", "mnist", "emnist", "usps", "svhn"}


def _plain(s: str) -> str:
    return s


_FULL_STOPS = tuple("。！？；：，）」”")


def then(*parts: str) -> str:
    """Sentences one after the other: a space between them, none after Chinese punctuation."""
    out = ""
    for part in parts:
        if not part:
            continue
        out = part if not out else out + ("" if out.endswith(_FULL_STOPS) else " ") + part
    return out


def kind_text(kind: str) -> str:
    """ "transfer learning (starts from pretrained weights)", in the current language (unknown kinds as they are)."""
    return gettext(KIND_TEXT[kind]) if kind in KIND_TEXT else str(kind)


def kind_short(kind: str) -> str:
    """ "transfer learning", in the current language."""
    return gettext(KIND_SHORT[kind]) if kind in KIND_SHORT else str(kind)


def kind_word(kind: str) -> str:
    """ "transfer", "scratch", ... in the current language (:func:`transfer_core.compare.kind_label`)."""
    return kind_label(kind)


def pct(x: float | None) -> str:
    """An accuracy as the Results page shows it: 0.9444 -> "94.4%"; "—" when unknown."""
    return "—" if x is None else f"{x:.1%}"


def list_words(items: Sequence[str]) -> str:
    """["a", "b", "c"] -> "a, b, c" (in Chinese "a、b、c")."""
    items = [str(i) for i in items]
    if not items:
        return ""
    out = items[0]
    for item in items[1:]:
        out = _("{list}, {item}").format(list=out, item=item)
    return out


def join_words(items: Sequence[str]) -> str:
    """["a"] -> "a", ["a", "b"] -> "a and b", ["a", "b", "c"] -> "a, b and c"."""
    items = [str(i) for i in items]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return _("{list} and {last}").format(list=list_words(items[:-1]), last=items[-1])


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
    shown = _("digits") if noun == "digits" else noun
    if not classes:
        return _("all classes of {dataset}").format(dataset=shown) if with_noun else _("all classes")
    if all(isinstance(c, int) or (isinstance(c, str) and c.isdigit()) for c in classes):
        values = [int(c) for c in classes]
        text = _ranges(values) if values == sorted(values) else join_words([str(v) for v in values])
        if noun == "digits":
            return _("digits {classes}").format(classes=text) if with_noun else text
        return _("{dataset} classes {classes}").format(dataset=noun, classes=text) if with_noun else text
    names = [str(c) for c in classes]
    if len(names) > 6:
        text = _("{n} classes ({names}, …)").format(n=len(names), names=list_words(names[:4]))
        return _("{dataset}: {classes}").format(dataset=noun, classes=text) if with_noun else text
    return _("{dataset}: {classes}").format(dataset=noun, classes=join_words(names)) if with_noun else join_words(names)


def labels_text(per_class: Any) -> str:
    """ "from 10 labels each", "from 1 label each", or "from all their training images"."""
    if per_class in (None, "", 0):
        return _("from all their training images")
    n = int(per_class)
    return ngettext("from {n} label each", "from {n} labels each", n).format(n=n)


def weights_text(weights: str, source: Mapping[str, Any] | None = None) -> str:
    """Where a backbone starts: "random init", "ImageNet", "pretrained on digits 0–4 (run NAME)",
    "file NAME". ``source``: the config of the run named by ``run:...`` (when it was found)."""
    w = str(weights or "none").strip()
    if w == "none":
        return _("random init")
    if w == "imagenet":
        return _("pretrained on ImageNet")
    if w.startswith("run:"):
        ref = w[4:]
        if source:
            data = source.get("data") or {}
            return _("pretrained on {classes} (run {ref})").format(
                classes=class_text(data.get("dataset", "?"), data.get("classes")), ref=ref)
        return _("pretrained by run {ref}").format(ref=ref)
    if w.startswith("file:"):
        return _("weights from file {name}").format(name=w[5:].rsplit("/", 1)[-1])
    return w


def start_text(weights: str, source: Mapping[str, Any] | None = None) -> str:
    """What a pretrained backbone starts from, said after "starts from": "ImageNet", "digits 0–4 (run NAME)"
    (:func:`weights_text` without its "pretrained on")."""
    w = str(weights or "none").strip()
    if w == "imagenet":
        return "ImageNet"
    if w.startswith("run:") and source:
        data = source.get("data") or {}
        return _("{classes} (run {ref})").format(classes=class_text(data.get("dataset", "?"), data.get("classes")),
                                                 ref=w[4:])
    return weights_text(w, source)


def backbone_text(cfg: Mapping[str, Any]) -> str:
    """Each backbone with its start and what it freezes: "resnet18 (ImageNet, first 3 layer groups frozen)"."""
    parts = []
    for b in cfg.get("backbones") or []:
        w = str(b.get("weights", "?"))
        src = {"none": _("random init"), "imagenet": "ImageNet"}.get(
            w, w.replace("run:", _("run") + " ").replace("file:", _("file") + " "))
        fr = b.get("freeze", 0)
        frozen = (_("every layer trained") if fr in (0, "0") else
                  _("body frozen, only the new layers trained") if fr == "all"
                  else _("first {n} layer groups frozen").format(n=fr))
        parts.append(_("{name} ({start}, {layers})").format(name=b.get("name", "?"), start=src, layers=frozen))
    return semicolons(parts)


def semicolons(items: Sequence[str]) -> str:
    """Items one after the other with "; " between them (Chinese "；")."""
    out = ""
    for item in items:
        out = str(item) if not out else _("{list}; {item}").format(list=out, item=item)
    return out


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
    shown = em(f"{acc:.1%}")
    if n_classes:
        guess = f"{1 / n_classes:.1%}"
        text = (_("{in_short} the model answers correctly on {acc} of images it never saw ({n} classes: guessing "
                  "would score {guess}).").format(in_short=em(_("In short:")), acc=shown, n=n_classes, guess=guess)
                if lead else
                _("The model answers correctly on {acc} of images it never saw ({n} classes: guessing would score "
                  "{guess}).").format(acc=shown, n=n_classes, guess=guess))
    else:
        text = (_("{in_short} the model answers correctly on {acc} of images it never saw.").format(
                    in_short=em(_("In short:")), acc=shown) if lead else
                _("The model answers correctly on {acc} of images it never saw.").format(acc=shown))
    weak = weakest(per_class or [], conf)
    if weak:
        recall = f"{weak['recall']:.0%}"
        if weak["confused_with"] is not None:
            text = then(text, _("It is weakest on class {name} (recognised {recall} of the time, most often taken "
                                 "for {other}).").format(name=em(esc(weak["name"])), recall=recall,
                                                     other=em(esc(weak["confused_with"]))))
        else:
            text = then(text, _("It is weakest on class {name} (recognised {recall} of the time).").format(
                name=em(esc(weak["name"])), recall=recall))
    return text


def duration_text(status: Mapping[str, Any]) -> str:
    """How long a run trained (m:ss or h:mm:ss), from its status; "" when unknown."""
    took = float(status.get("ended") or 0) - float(status.get("started") or 0)
    if took <= 0:
        return ""
    s = int(round(took))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
