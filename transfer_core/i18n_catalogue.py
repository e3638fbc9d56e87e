"""Keep the gettext catalogues in step with the code (Babel): extract, update, compile, check.

``python -m transfer_core.i18n_catalogue all`` (``make i18n``) does what a release needs:
extract every marked string (``_``, ``N_``, ``ngettext``) from the app, the pages, the
dashboard and the core into ``locale/transfer_lab.pot``; merge it into each language's
``.po`` (translations kept, new strings added empty, gone ones dropped); compile the
``.mo`` files; and list what is still untranslated (exit 1 when anything is).

``part NAME FILE...`` and ``merge`` let several translators work at once: a part is a
``.po`` of the strings of some files (``locale/parts/NAME.po``, prefilled from the main
catalogue), and ``merge`` copies every translated part entry into the main catalogue.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from transfer_core.i18n import DOMAIN, LANGUAGES, LOCALE_DIR

ROOT = LOCALE_DIR.parents[1]
SOURCES = ("app.py", "pages", "dashboard", "transfer_core")
METHOD_MAP = [("**.py", "python")]
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
PARTS = LOCALE_DIR / "parts"


def po_path(lang: str) -> Path:
    return LOCALE_DIR / LANGUAGES[lang][0] / "LC_MESSAGES" / f"{DOMAIN}.po"


def _translated_languages() -> list[str]:
    return [code for code in LANGUAGES if code != "en"]


def _new_catalogue(locale: str | None = None):
    from babel.messages.catalog import Catalog

    return Catalog(locale=locale, project="Transfer Lab", domain=DOMAIN, charset="utf-8",
                   msgid_bugs_address="", copyright_holder="Transfer Lab", fuzzy=False)


def extract(paths: list[Path] | None = None):
    """A catalogue of every marked string in ``paths`` (default: the whole app), with locations."""
    from babel.messages.extract import extract_from_file

    cat = _new_catalogue()
    files: list[Path] = []
    for rel in (paths or [ROOT / s for s in SOURCES]):
        path = Path(rel)
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for file in files:
        if any(part in (".venv", "__pycache__") for part in file.parts):
            continue
        rel = file.resolve().relative_to(ROOT).as_posix()
        for lineno, message, comments, context in extract_from_file("python", str(file)):
            cat.add(message, None, [(rel, lineno)], auto_comments=comments, context=context)
    return cat


def read(path: Path, locale: str | None = None):
    from babel.messages.pofile import read_po

    with open(path, "rb") as fh:
        return read_po(fh, locale=locale)


def write(cat, path: Path) -> None:
    from babel.messages.pofile import write_po

    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    write_po(buf, cat, width=100, sort_output=False, omit_header=False)
    path.write_bytes(buf.getvalue())


def compile_mo(cat, path: Path) -> None:
    from babel.messages.mofile import write_mo

    buf = io.BytesIO()
    write_mo(buf, cat)
    path.write_bytes(buf.getvalue())


def _load_lang(lang: str):
    path = po_path(lang)
    return read(path, LANGUAGES[lang][0]) if path.exists() else _new_catalogue(LANGUAGES[lang][0])


def update(template) -> None:
    """Merge the template into every language's .po (no fuzzy guesses: new strings stay empty)."""
    for lang in _translated_languages():
        cat = _load_lang(lang)
        cat.update(template, no_fuzzy_matching=True, update_header_comment=False)
        cat.obsolete.clear()
        write(cat, po_path(lang))


def compile_all() -> None:
    for lang in _translated_languages():
        compile_mo(_load_lang(lang), po_path(lang).with_suffix(".mo"))


def missing(lang: str = "zh") -> list[str]:
    """Msgids of the language's catalogue without a translation."""
    out = []
    for msg in _load_lang(lang):
        if not msg.id:
            continue
        strings = msg.string if isinstance(msg.string, (tuple, list)) else (msg.string,)
        if not all(strings) or msg.fuzzy:
            out.append(msg.id if isinstance(msg.id, str) else msg.id[0])
    return out


def make_part(name: str, files: list[str], lang: str = "zh") -> Path:
    """``locale/parts/NAME.po``: the strings of ``files``, with translations from the main catalogue and the old part."""
    cat = extract([ROOT / f for f in files])
    cat.locale = LANGUAGES[lang][0]
    known = {m.id: m.string for m in _load_lang(lang) if m.id and m.string}
    path = PARTS / f"{name}.{lang}.po"
    if path.exists():
        known.update({m.id: m.string for m in read(path) if m.id and m.string})
    for msg in cat:
        if msg.id in known:
            msg.string = known[msg.id]
    write(cat, path)
    return path


def merge_parts(lang: str = "zh") -> int:
    """Copy every translated entry of every part into the main catalogue; returns how many were copied."""
    cat = _load_lang(lang)
    copied = 0
    for path in sorted(PARTS.glob(f"*.{lang}.po")):
        for msg in read(path):
            if msg.id and msg.string and msg.id in cat and cat[msg.id].string != msg.string:
                cat[msg.id].string = msg.string
                copied += 1
    write(cat, po_path(lang))
    return copied


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m transfer_core.i18n_catalogue", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["extract", "update", "compile", "missing", "all", "part", "merge"])
    ap.add_argument("args", nargs="*", help="part: NAME FILE...")
    ns = ap.parse_args(argv)
    if ns.command == "part":
        if len(ns.args) < 2:
            print("error: part needs NAME and at least one FILE", file=sys.stderr)
            return 2
        print(make_part(ns.args[0], ns.args[1:]))
        return 0
    if ns.command in ("extract", "update", "all", "merge"):
        template = extract()
        write(template, TEMPLATE)
        print(f"{len(template)} strings -> {TEMPLATE.relative_to(ROOT)}")
        if ns.command != "extract":
            update(template)
    if ns.command == "merge":
        print(f"{merge_parts()} translations copied from {PARTS.relative_to(ROOT)}")
        ns.command = "all"
    if ns.command in ("compile", "all"):
        compile_all()
    if ns.command in ("missing", "all"):
        gone = missing()
        for msgid in gone:
            print(f"untranslated: {msgid!r}")
        print(f"{len(gone)} untranslated")
        return 1 if gone else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
