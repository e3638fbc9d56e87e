"""What every story shares: a run's config and label, the data a story looks at once, and the slides
every subject has (the question, the data, where it fails, the takeaways).

The method slide is :mod:`.method_slide`; the stories themselves are :mod:`.story_run`,
:mod:`.story_compare`, :mod:`.story_sweep` and :mod:`.story_distill`. No Streamlit here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..compare import run_kind
from ..i18n import _, ngettext
from ..runs import Run, RunStore, RunSummary
from . import sentences as sx
from .story import Picture, Slide

__all__ = ["TOP_LOSSES", "VAL_LIMIT", "StoryData", "run_label", "run_config", "class_count",
           "teacher_refs", "question_for_run", "question_slide", "data_slide", "fails_slide", "takeaways_slide"]

log = logging.getLogger(__name__)

TOP_LOSSES = 8
VAL_LIMIT = 400  # validation images the top-loss pass looks at (a stratified subset above this)


def run_label(s: RunSummary, kind: str) -> str:
    """A short name for a run (the dashboard's run_title, which the core cannot import)."""
    name = s.name or _("{kind} {backbones}").format(kind=sx.kind_word(kind), backbones="+".join(s.backbones))
    return f"{name} · {s.id[-4:]}"


def run_config(run: Run) -> dict[str, Any]:
    try:
        return run.config_dict()
    except Exception:  # noqa: BLE001 - a damaged config: the story says what it can
        return {}


def class_count(cfg: Mapping[str, Any], conf: Mapping[str, Any] | None) -> int | None:
    if conf and conf.get("labels"):
        return len(conf["labels"])
    classes = (cfg.get("data") or {}).get("classes")
    return len(classes) if classes else None


class StoryData:
    """The data of configs, built once per story (a sample grid and class counts)."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def bundle(self, cfg: Mapping[str, Any]) -> Any:
        from ..config import from_dict

        key = json.dumps({"data": cfg.get("data"), "seed": cfg.get("seed", 0)}, sort_keys=True, default=str)
        if key not in self._cache:
            try:
                from ..data import build_data

                rc = from_dict({"data": dict(cfg.get("data") or {}), "seed": cfg.get("seed", 0)})
                self._cache[key] = build_data(rc.data, rc.seed)
            except Exception as exc:  # noqa: BLE001 - the data may be gone: the story says so
                self._cache[key] = exc
        return self._cache[key]


def question_for_run(cfg: Mapping[str, Any], store: RunStore) -> str:
    data = cfg.get("data") or {}
    target = sx.class_text(data.get("dataset", "?"), data.get("classes"))
    each = sx.labels_text(data.get("train_per_class"))
    bbs = [b for b in cfg.get("backbones") or [] if isinstance(b, Mapping)]
    names = [str(b.get("name", "?")) for b in bbs]
    kind = "distill" if cfg.get("method") == "distill" else run_kind(cfg)
    models = sx.join_words(names)
    if kind == "fusion":
        return _("How well do {models}, fused into one model, recognise {target} {each}?").format(
            models=models, target=target, each=each)
    if kind == "scratch":
        return _("How well does {models}, trained from scratch, recognise {target} {each}?").format(
            models=models, target=target, each=each)
    if kind == "distill":
        teachers = teacher_refs(cfg)
        if not teachers:
            return _("Can a small {models} learn {target} from its teachers and keep their accuracy?").format(
                models=models, target=target)
        return ngettext("Can a small {models} learn {target} from {n} teacher and keep its accuracy?",
                        "Can a small {models} learn {target} from {n} teachers and keep their accuracy?",
                        len(teachers)).format(models=models, target=target, n=len(teachers))
    weights = [str(b.get("weights", "none")) for b in bbs]
    src = next((w for w in weights if w.startswith("run:")), None)
    if src:
        try:
            scfg = store.get(src).config_dict()
        except Exception:  # noqa: BLE001 - the source run is gone: say it by name
            scfg = None
        if scfg:
            sdata = scfg.get("data") or {}
            source = sx.class_text(sdata.get("dataset", "?"), sdata.get("classes"))
            same = sx.dataset_noun(sdata.get("dataset", "")) == sx.dataset_noun(data.get("dataset", ""))
            goal = sx.class_text(data.get("dataset", "?"), data.get("classes"), with_noun=not same) \
                if data.get("classes") else target
            return _("Does pretraining on {source} help recognise {target} {each}?").format(
                source=source, target=goal, each=each)
        return _("Does pretraining (run {ref}) help recognise {target} {each}?").format(
            ref=src[4:], target=target, each=each)
    if any(w == "imagenet" for w in weights):
        return _("Does ImageNet pretraining help {models} recognise {target} {each}?").format(
            models=models, target=target, each=each)
    return _("How well does {models} recognise {target} {each}?").format(models=models, target=target, each=each)


def data_slide(cfg: Mapping[str, Any], data: StoryData, images: bool, extra: str = "") -> Slide:
    d = cfg.get("data") or {}
    dataset = str(d.get("dataset", "?"))
    slide = Slide("data", _("The data: {classes}").format(classes=sx.class_text(dataset, d.get("classes"))))
    bundle = data.bundle(cfg)
    per = d.get("train_per_class")
    size = d.get("image_size", "?")
    if isinstance(bundle, Exception):
        reason = str(bundle).splitlines()[0][:200] if str(bundle) else type(bundle).__name__
        slide.lead = (_("{dataset} at {size} px, up to {n} training images per class. The images cannot be loaded "
                        "here: {reason}") if per else
                      _("{dataset} at {size} px, every training image. The images cannot be loaded here: "
                        "{reason}")).format(dataset=dataset, size=size, n=per, reason=reason)
        slide.notes = _("Dataset {dataset}; the data could not be loaded when this deck was made: {reason}.").format(
            dataset=dataset, reason=reason)
        return slide
    import numpy as np

    classes = [str(c) for c in bundle.classes]
    train = np.bincount(bundle.train.labels.long().numpy(), minlength=len(classes)).tolist()
    val = np.bincount(bundle.val.labels.long().numpy(), minlength=len(classes)).tolist()
    n_train, n_val = sum(train), sum(val)
    per_text = (ngettext("{n} training image per class", "{n} training images per class", int(per)).format(n=per)
                if per else
                _("{low}–{high} training images per class").format(low=min(train), high=max(train))
                if min(train) != max(train) else
                ngettext("{n} training image per class", "{n} training images per class", train[0]).format(n=train[0]))
    slide.lead = _("{n} classes · {per_class} ({n_train} in all) · {n_val} validation images the model never trains "
                   "on · {size} px").format(n=len(classes), per_class=per_text, n_train=n_train, n_val=n_val, size=size)
    if extra:
        slide.lead += _(". {more}").format(more=extra)
    slide.figures.append({"kind": "counts", "args": {"train": dict(zip(classes, train)), "val": dict(zip(classes, val))},
                          "caption": _("Images per class: training (blue) and validation (orange)")})
    if images:
        from ..data import sample_grid
        from .images import MAX_ROWS, sample_grid_png

        try:
            rows = min(len(classes), MAX_ROWS)
            per_row = max(3, min(8, round(1.2 * rows)))  # about as wide as the slot beside the counts
            grid = sample_grid(bundle, per_class=per_row)
            caption = (_("Training images, one row per class (the first {rows} of {n} classes)").format(
                rows=MAX_ROWS, n=len(classes)) if len(classes) > MAX_ROWS else _("Training images, one row per class"))
            slide.pictures.append(Picture(sample_grid_png(grid, per_row=per_row), caption, "samples"))
        except Exception as exc:  # noqa: BLE001 - a lazily read file vanished: the counts still show
            log.warning("present: no sample grid: %s", exc)
    slide.notes = (_("Dataset {dataset} ({source}); classes {classes}; {n_train} training and {n_val} validation "
                     "images (validation share {share}); images resized to {size} px, light augmentation.")
                   if d.get("augment") else
                   _("Dataset {dataset} ({source}); classes {classes}; {n_train} training and {n_val} validation "
                     "images (validation share {share}); images resized to {size} px.")).format(
        dataset=dataset, source=bundle.info.get("source", dataset), classes=sx.list_words(classes), n_train=n_train,
        n_val=n_val, share=d.get("val_fraction", 0.2), size=size)
    return slide




def teacher_refs(cfg: Mapping[str, Any]) -> list[str]:
    d = cfg.get("distill") or {}
    out = []
    for t in d.get("teachers") or []:
        ref = t.get("run") or t.get("ref") if isinstance(t, Mapping) else t
        if ref:
            out.append(str(ref))
    return out




def fails_slide(run: Run | None, runs_root: Path, data: StoryData, images: bool, who: str | None = None) -> Slide:
    """``who``: what fails, as the title and the lead say it ("the best run"; default "it")."""
    who = who or _("it")
    slide = Slide("fails", _("Where it fails"))
    if run is None:
        slide.lead = _("No finished run to look at yet.")
        return slide
    conf, per_class = run.confusion(), run.per_class() or []
    weak = sx.weakest(per_class, conf)
    if weak and weak["recall"] < 1.0:
        slide.title = _("Where {who} fails: class {name}").format(who=who, name=weak["name"])
        recall = f"{weak['recall']:.0%}"
        slide.lead = (_("Class {name} is the weakest: {who} recognises it {recall} of the time and most often takes "
                        "it for {other}.") if weak["confused_with"] else
                      _("Class {name} is the weakest: {who} recognises it {recall} of the time.")).format(
            name=weak["name"], who=who, recall=recall, other=weak["confused_with"])
    elif conf:
        slide.lead = _("No validation image of any class was misclassified.")
    else:
        slide.lead = _("No confusion matrix was recorded for this run.")
    if conf:
        slide.figures.append({"kind": "confusion", "args": {"confusion": conf},
                              "caption": _("Rows: the true class; columns: the answer. The diagonal is right.")})
    if images and conf and run.checkpoint_path.exists():
        pic = _top_losses(run, runs_root, data)
        if pic is not None:
            slide.pictures.append(pic)
    rows = sorted(per_class, key=lambda r: r.get("recall", 0.0))[:5]
    if rows:
        slide.notes = _("Lowest recall: {rows}. Run {run}.").format(rows=sx.semicolons([
            _("{name}: recall {recall}, precision {precision}, {n} images").format(
                name=r.get("class"), recall=f"{float(r.get('recall', 0)):.0%}",
                precision=f"{float(r.get('precision', 0)):.0%}", n=int(r.get("support", 0))) for r in rows]),
            run=run.id)
    return slide


def _top_losses(run: Run, runs_root: Path, data: StoryData) -> Picture | None:
    """The validation images with the highest loss, as one PNG; None when the model cannot be loaded."""
    try:
        from ..insights.galleries import top_losses
        from ..insights.val_pass import val_pass
        from ..predict import load_run_model
        from .images import gallery_png

        loaded = load_run_model(run, runs_root)
        bundle = data.bundle(run.config_dict())
        if isinstance(bundle, Exception):
            raise bundle
        vp = val_pass(loaded, bundle, limit=VAL_LIMIT)
        tl = top_losses(loaded, bundle, k=TOP_LOSSES, vp=vp)
    except Exception as exc:  # noqa: BLE001 - no checkpoint, data gone: the matrix alone tells it
        log.warning("present: no top-loss gallery for %s: %s", run.id, exc)
        return None
    if not tl:
        return None
    items = [(img, _("said {pred} ({prob})").format(pred=pred, prob=f"{prob:.0%}"),
              _("true {true}, loss {loss}").format(true=true, loss=f"{loss:.1f}"), pred == true)
             for img, true, pred, loss, prob in tl]
    return Picture(gallery_png(items), _("Its most costly answers: red frame = wrong, with what it said and how sure "
                                         "it was"), "top_losses")


def question_slide(question: str, lead: str, notes: str) -> Slide:
    return Slide("question", question, lead=lead, notes=notes)


def takeaways_slide(sentences: Sequence[str], notes: str = "") -> Slide:
    return Slide("takeaways", _("Takeaways"), bullets=[s for s in sentences if s], notes=notes)
