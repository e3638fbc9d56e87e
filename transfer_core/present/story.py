"""A subject told as a short story of slides, as plain data: what the page draws and the decks write.

:func:`build_story` reads a subject (:mod:`.subject`) from disk and returns a :class:`Story`
of seven slides, one per step:

1. the question, in words made from the subject;
2. the data: a sample grid, the classes and their counts;
3. the method as a picture: layer groups (frozen shaded), projections and α for a fusion,
   teachers and student for a distillation;
4. the answer: the headline number beside its baseline, and the spread over seeds (or "one seed");
5. the evidence: the chart that carries it;
6. where it fails: the confusion matrix and the top-loss gallery;
7. takeaways: sentences computed from the numbers, and the presenter's own notes.

A slide holds text, numbers (:class:`Number`), figure specs (dicts :func:`.figures.build`
draws) and pictures (PNG bytes); ``notes`` are the speaker notes (config, seeds, run ids).
The presenter's edits (:mod:`.notes`) are applied last, so the page, the PowerPoint deck
and the HTML deck say the same thing. The numbers and sentences come from the modules the
other pages use: :mod:`transfer_core.seeds`, :mod:`transfer_core.compare`,
:mod:`transfer_core.sweeps.headlines`, :mod:`transfer_core.distill.versus`, :mod:`.sentences`.

This module holds the slides' shapes and puts a story together; the rooms it draws on:
:mod:`.slides` (what every story shares), :mod:`.method_slide`, and one module per kind of
subject: :mod:`.story_run`, :mod:`.story_compare`, :mod:`.story_sweep`, :mod:`.story_distill`.
No Streamlit here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..i18n import N_, _, gettext
from .notes import load_notes
from .subject import Subject, parse_subject

__all__ = ["STEPS", "Number", "Picture", "Slide", "Story", "build_story", "apply_notes", "student_vs_teachers_rows",
           "default_deck_path"]

STEPS: tuple[tuple[str, str], ...] = (
    ("question", N_("The question")), ("data", N_("The data")), ("method", N_("The method")),
    ("answer", N_("The answer")), ("evidence", N_("The evidence")), ("fails", N_("Where it fails")),
    ("takeaways", N_("Takeaways")),
)
#: What a story is about, in the deck's subtitle.
_WHAT = {"run": N_("one run"), "compare": N_("a comparison"), "sweep": N_("an experiment"),
         "distill": N_("a distillation")}
_STEP_NAME = dict(STEPS)


@dataclass
class Number:
    label: str
    value: str
    sub: str = ""
    role: str = "headline"  # headline | baseline | spread


@dataclass
class Picture:
    png: bytes
    caption: str = ""
    kind: str = ""  # samples | top_losses


@dataclass
class Slide:
    id: str  # one of STEPS
    title: str
    lead: str = ""
    numbers: list[Number] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)  # {"kind", "args", "caption"}
    pictures: list[Picture] = field(default_factory=list)
    notes: str = ""  # speaker notes: the details
    computed_title: str = ""  # the title before the presenter's edit

    @property
    def step(self) -> str:
        """The step's name, in the current language."""
        return gettext(_STEP_NAME[self.id]) if self.id in _STEP_NAME else self.id


@dataclass
class Story:
    subject: str  # the subject's key (run:<id>, runs:..., sweep:..., distill:...)
    kind: str
    title: str  # the deck's title (the question)
    subtitle: str
    slides: list[Slide]
    folder: str  # where notes and decks are saved
    computed_takeaways: list[str] = field(default_factory=list)
    presenter_notes: str = ""

    def slide(self, slide_id: str) -> Slide:
        return next(s for s in self.slides if s.id == slide_id)


# --------------------------------------------------------------------------- the story


def _builders() -> dict[str, Callable[..., tuple[str, list[Slide], list[str]]]]:
    # imported here: the story modules import the slide shapes above
    from .story_compare import compare_story
    from .story_distill import distill_story
    from .story_run import run_story
    from .story_sweep import sweep_story

    return {"run": run_story, "compare": compare_story, "sweep": sweep_story, "distill": distill_story}


def build_story(subject: Subject | str, runs_root: str | os.PathLike | None = None, images: bool = True,
                with_notes: bool = True) -> Story:
    """The story of ``subject`` (a :class:`Subject` or its text), with the presenter's edits applied
    (``with_notes``); ``images`` False skips the sample grid and the top-loss gallery (no data or model
    loaded for them: faster)."""
    from .slides import StoryData, takeaways_slide

    if not isinstance(subject, Subject):
        subject = parse_subject(subject, runs_root)
    question, slides, takeaways = _builders()[subject.kind](subject, StoryData(), images)
    slides.append(takeaways_slide(takeaways, notes=_("Subject {subject}; made {when}.").format(
        subject=subject.key, when=dt.datetime.now().strftime("%Y-%m-%d %H:%M"))))
    for s in slides:
        s.computed_title = s.title
    story = Story(subject=subject.key, kind=subject.kind, title=question,
                  subtitle=_("Transfer Lab · {what} · {subject}").format(what=gettext(_WHAT[subject.kind]), subject=subject.key),
                  slides=slides, folder=str(subject.folder), computed_takeaways=list(takeaways))
    return apply_notes(story, load_notes(subject.folder)) if with_notes else story


def apply_notes(story: Story, notes: Mapping[str, Any]) -> Story:
    """A copy of ``story`` with the presenter's edits: titles per slide, takeaways, their own notes."""
    slides = []
    titles = notes.get("titles") or {}
    for s in story.slides:
        s = dataclasses.replace(s, bullets=list(s.bullets))
        if titles.get(s.id):
            s.title = str(titles[s.id])
        if s.id == "takeaways" and notes.get("takeaways") is not None:
            s.bullets = [str(t) for t in notes["takeaways"]]
        slides.append(s)
    out = dataclasses.replace(story, slides=slides, presenter_notes=str(notes.get("notes") or ""))
    if titles.get("question"):
        out.title = str(titles["question"])
    return out


def default_deck_path(story: Story, fmt: str) -> Path:
    return Path(story.folder) / f"deck.{fmt}"


def __getattr__(name: str) -> Any:  # lazy: story_distill imports this module's slide shapes
    if name == "student_vs_teachers_rows":
        from .story_distill import student_vs_teachers_rows

        return student_vs_teachers_rows
    raise AttributeError(name)
