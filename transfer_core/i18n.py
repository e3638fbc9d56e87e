"""Translations: one gettext layer for the dashboard, the report and the decks.

The catalogues are standard gettext files in ``transfer_core/locale``: the template
``transfer_lab.pot`` is extracted from the code with Babel (``make i18n``), each language
has ``<locale>/LC_MESSAGES/transfer_lab.po`` (edited by translators) and the compiled
``.mo`` that Python's :mod:`gettext` reads at run time.

How code uses it::

    from transfer_core.i18n import _, N_, ngettext
    st.button(_("Start training"))
    _("{n} runs finished").format(n=3)          # named placeholders, never f-strings
    LABELS = {"frozen": N_("Frozen")}             # module constants: mark with N_ ...
    st.write(_(LABELS[kind]))                     # ... translate where shown

The language is per call context, not per process: the dashboard serves several browser
sessions from one process, each in its own language. :func:`use_language` sets it for a
block (the CLI's ``present --lang zh``, a test); the dashboard registers a resolver with
:func:`set_resolver` that reads the current browser session's choice. With neither, the
language is English and every string is returned unchanged, so the CLI and the core's
error messages stay English.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext as _gettext
from pathlib import Path
from typing import Callable, Iterator

__all__ = [
    "LANGUAGES", "DEFAULT_LANGUAGE", "DOMAIN", "LOCALE_DIR", "_", "N_", "gettext", "ngettext", "language",
    "use_language", "set_resolver", "normalize_language", "is_translated",
]

DOMAIN = "transfer_lab"
LOCALE_DIR = Path(__file__).with_name("locale")
DEFAULT_LANGUAGE = "en"
# Code used in URLs (?lang=zh) and the CLI (--lang zh) -> (gettext locale, name shown in the switch).
LANGUAGES: dict[str, tuple[str, str]] = {"en": ("en", "English"), "zh": ("zh_CN", "简体中文")}

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("transfer_lab_language", default=None)
_resolver: Callable[[], str | None] | None = None


def normalize_language(value: str | None) -> str | None:
    """``"zh"``, ``"zh-CN"``, ``"zh_Hans"``, ``"ZH"`` -> ``"zh"``; ``"en-GB"`` -> ``"en"``; anything else -> None."""
    if not value:
        return None
    head = str(value).strip().replace("_", "-").split("-")[0].lower()
    return head if head in LANGUAGES else None


def set_resolver(resolver: Callable[[], str | None] | None) -> None:
    """Register where the language comes from when no :func:`use_language` block is active."""
    global _resolver
    _resolver = resolver


def language() -> str:
    """The language code strings are translated into here and now (``"en"`` or ``"zh"``)."""
    lang = _current.get()
    if lang is None and _resolver is not None:
        try:
            lang = _resolver()
        except Exception:  # a resolver must never break a page: fall back to English
            lang = None
    return normalize_language(lang) or DEFAULT_LANGUAGE


@contextlib.contextmanager
def use_language(lang: str | None) -> Iterator[str]:
    """Translate into ``lang`` inside the block (None or unknown: English). Yields the code used."""
    code = normalize_language(lang) or DEFAULT_LANGUAGE
    token = _current.set(code)
    try:
        yield code
    finally:
        _current.reset(token)


@functools.lru_cache(maxsize=None)
def _catalogue(lang: str) -> _gettext.NullTranslations:
    locale = LANGUAGES[lang][0]
    return _gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[locale], fallback=True)


def gettext(message: str) -> str:
    """``message`` in the current language (unchanged when English or not in the catalogue)."""
    lang = language()
    if lang == DEFAULT_LANGUAGE or not message:
        return message
    return _catalogue(lang).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message for ``n`` in the current language."""
    lang = language()
    if lang == DEFAULT_LANGUAGE:
        return singular if n == 1 else plural
    return _catalogue(lang).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a string for extraction without translating it now (module constants)."""
    return message


def is_translated(message: str, lang: str = "zh") -> bool:
    """Whether the catalogue of ``lang`` holds a translation of ``message``."""
    code = normalize_language(lang) or DEFAULT_LANGUAGE
    return code == DEFAULT_LANGUAGE or _catalogue(code).gettext(message) != message


_ = gettext
