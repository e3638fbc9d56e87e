"""``python -m transfer_core present SUBJECT --format pptx|html [--lang en|zh] [--out FILE]``: a deck from the
command line.

SUBJECT as on the Present page (``run:<run>``, ``runs:<run>,<run>``, ``sweep:<sweep>``,
``distill:<run>``; see :mod:`.subject`). ``--lang`` is the deck's language (English by default;
``zh``: Simplified Chinese, its charts and pictures too). The deck goes to ``--out`` or into the
subject's folder; its path is the last line of stdout. Exit codes: 0 written; 2 bad input (no such
subject, unknown format or language, an output path that cannot be written), one ``error:`` line;
1 the charts could not be drawn (no browser, or it took too long), one ``error:`` line. The checks
of the input run before the language is set, so their ``error:`` lines stay English.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "cmd_present", "check_language"]


def add_parser(sub: Any, runs_dir_arg: Any) -> None:
    pr = sub.add_parser("present", help="write a slide deck (PowerPoint or HTML) of a run, comparison, experiment "
                                        "or distillation")
    pr.add_argument("subject", nargs="?", help="run:<run>, runs:<run>,<run>, sweep:<sweep> or distill:<run>")
    pr.add_argument("--format", default=None, metavar="pptx|html", help="pptx (PowerPoint) or html (one offline file)")
    pr.add_argument("--lang", default="en", metavar="en|zh", help="the deck's language: en (English, the default) or "
                                                                 "zh (Simplified Chinese)")
    pr.add_argument("--out", default=None, metavar="FILE", help="where to write it (default: deck.<format> in the "
                                                               "subject's folder)")
    runs_dir_arg(pr)
    pr.set_defaults(fn=cmd_present)


def check_language(lang: str | None) -> str:
    """The language code of ``--lang`` (``en`` or ``zh``; ``zh-CN`` and ``ZH`` work too); ValueError (one line)
    for anything else."""
    from ..i18n import LANGUAGES, normalize_language

    code = normalize_language(lang)
    if code is None:
        raise ValueError(f"unknown language {lang!r}: use " + " or ".join(f"--lang {c}" for c in LANGUAGES))
    return code


def cmd_present(args: argparse.Namespace) -> int:
    from ..i18n import use_language
    from .decks import check_format, check_writable, write_deck
    from .render import RenderError
    from .subject import parse_subject

    fmt = check_format(args.format)
    lang = check_language(args.lang)
    if args.out:
        check_writable(args.out)  # before minutes of work: fail now
    subject = parse_subject(args.subject, args.runs_dir)
    from .story import build_story

    with use_language(lang):  # the story, its pictures and charts, and the deck's own words
        story = build_story(subject)
        try:
            path = write_deck(story, fmt, args.out)
        except RenderError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"{len(story.slides)} slides: {story.title}", file=sys.stderr)
    print(path)
    return 0
