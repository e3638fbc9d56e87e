"""Translations: every string the code marks has a Chinese translation, the compiled
catalogue is the one the .po says, the code follows the rules extraction depends on, and
the language is per context (a browser session, a ``use_language`` block), English by default.
"""

from __future__ import annotations

import ast
import gettext
import io
import re
import threading
from pathlib import Path

import pytest

from transfer_core import i18n
from transfer_core import i18n_catalogue as cat
from transfer_core.i18n import _, ngettext, use_language

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)(?:[:!][^{}]*)?\}(?!\})")


@pytest.fixture(scope="module")
def extracted():
    return cat.extract()


@pytest.fixture(scope="module")
def zh():
    return cat.read(cat.po_path("zh"), "zh_CN")


def _strings(msg) -> list[str]:
    return list(msg.string) if isinstance(msg.string, (tuple, list)) else [msg.string]


def _ids(msg) -> list[str]:
    return list(msg.id) if isinstance(msg.id, (tuple, list)) else [msg.id]


def test_every_string_the_code_marks_has_a_chinese_translation(extracted, zh):
    missing = []
    for msg in extracted:
        if not msg.id:
            continue
        found = zh.get(msg.id)
        if found is None or found.fuzzy or not all(_strings(found)):
            where = ", ".join(f"{f}:{n}" for f, n in msg.locations[:2])
            missing.append(f"{_ids(msg)[0]!r} ({where})")
    assert not missing, f"{len(missing)} strings lack a zh translation (run `make i18n`, then translate):\n" + \
        "\n".join(missing[:40])


def test_the_compiled_catalogue_matches_the_po_file(zh):
    mo_path = cat.po_path("zh").with_suffix(".mo")
    buf = io.BytesIO()
    from babel.messages.mofile import write_mo

    write_mo(buf, zh)
    # the messages, not the header entry ("": dates Babel stamps when it compiles)
    fresh = {k: v for k, v in gettext.GNUTranslations(io.BytesIO(buf.getvalue()))._catalog.items() if k != ""}
    shipped = {k: v for k, v in gettext.GNUTranslations(io.BytesIO(mo_path.read_bytes()))._catalog.items() if k != ""}
    stale = sorted(str(k) for k in set(fresh) ^ set(shipped)) + \
        sorted(str(k) for k in set(fresh) & set(shipped) if fresh[k] != shipped[k])
    assert not stale, f"the .mo is stale (run `make i18n`): {stale[:10]}"


def test_translations_keep_every_placeholder_of_their_message(zh):
    bad = []
    for msg in zh:
        if not msg.id:
            continue
        wanted = set(PLACEHOLDER.findall(_ids(msg)[-1]))
        for text in _strings(msg):
            if text and set(PLACEHOLDER.findall(text)) != wanted:
                bad.append(f"{_ids(msg)[0]!r} -> {text!r}")
    assert not bad, "placeholders differ:\n" + "\n".join(bad[:20])


# The article's terms: a message that names the concept says it the article's way.
TERMS = [
    (re.compile(r"\bfine-tun", re.I), "微调"),
    (re.compile(r"\bdistil", re.I), "蒸馏"),
    (re.compile(r"\bfusion\b", re.I), "融合"),
    (re.compile(r"\bpretrained\b", re.I), "预训练"),
    (re.compile(r"\btransfer learning\b", re.I), "迁移学习"),
    (re.compile(r"\bfrozen\b", re.I), "冻结"),
]


def test_translations_use_the_articles_terminology(zh):
    bad = []
    for msg in zh:
        if not msg.id or not all(_strings(msg)):
            continue
        for pattern, term in TERMS:
            if pattern.search(PLACEHOLDER.sub("", _ids(msg)[0])) and not all(term in s for s in _strings(msg)):
                bad.append(f"{_ids(msg)[0]!r} -> {_strings(msg)[0]!r} lacks {term}")
    assert not bad, "\n".join(bad[:20])


def _modules():
    for base in ("app.py", "pages", "dashboard", "transfer_core"):
        path = ROOT / base
        yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


def _imports_underscore(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.ImportFrom) and any(a.name == "_" and not a.asname for a in n.names)
               for n in ast.walk(tree))


def test_marked_text_is_extractable_and_underscore_is_never_rebound():
    problems = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_", "ngettext"):
                texts = node.args[:2] if node.func.id == "ngettext" else node.args[:1]
                # a literal is extracted; a name or subscript is an N_-marked constant translated where shown;
                # an f-string, a concatenation or a call is text Babel never sees
                if not texts or any(isinstance(a, (ast.JoinedStr, ast.BinOp, ast.Call)) or node.func.id == "N_" and
                                    not (isinstance(a, ast.Constant) and isinstance(a.value, str)) for a in texts):
                    problems.append(f"{rel}:{node.lineno}: {node.func.id}() of text Babel cannot extract")
        if _imports_underscore(tree):
            for node in ast.walk(tree):
                if (isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, (ast.Store, ast.Del))) \
                        or (isinstance(node, ast.arg) and node.arg == "_"):
                    problems.append(f"{rel}:{node.lineno}: `_` rebound, it shadows the translation function")
    assert not problems, "\n".join(sorted(set(problems))[:30])


def _module_level_calls(node: ast.AST):
    """Calls that run when the module is imported (not inside a function, a lambda or a class method)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(child, ast.Call):
            yield child
        yield from _module_level_calls(child)


def test_nothing_is_translated_at_import_time():
    """A module of the core or the dashboard is imported once per process, in whatever language the first
    importer speaks: a text translated then would stay in that language for everyone (pages and app.py
    are scripts run per session: they may translate at their top level)."""
    found = []
    for path in _modules():
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in ("transfer_core", "dashboard"):
            continue
        for call in _module_level_calls(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(call.func, ast.Name) and call.func.id in ("_", "gettext", "ngettext"):
                found.append(f"{rel}:{call.lineno}")
    assert not found, "translated at import: " + ", ".join(found)


def test_english_by_default_and_chinese_inside_use_language():
    assert i18n.language() == "en"
    assert _("Results") == "Results"
    with use_language("zh-CN") as code:
        assert code == "zh" and i18n.language() == "zh"
        assert _("Results") != "Results" and re.search(r"[\u4e00-\u9fff]", _("Results"))
        assert _("a string no catalogue has") == "a string no catalogue has"
    assert _("Results") == "Results"
    with use_language("xx"):
        assert i18n.language() == "en"


def test_language_is_per_thread_and_the_resolver_fills_in():
    seen = {}
    with use_language("zh"):
        t = threading.Thread(target=lambda: seen.setdefault("thread", i18n.language()))
        t.start()
        t.join()
        assert i18n.language() == "zh"
    assert seen["thread"] == "en"  # a new thread (the training thread) starts in English
    i18n.set_resolver(lambda: "zh")
    try:
        assert i18n.language() == "zh"
        with use_language("en"):
            assert i18n.language() == "en"  # an explicit block wins over the resolver
    finally:
        i18n.set_resolver(None)
    i18n.set_resolver(lambda: 1 / 0)  # a broken resolver falls back to English
    try:
        assert i18n.language() == "en"
    finally:
        i18n.set_resolver(None)


def test_plural_forms_in_both_languages(zh):
    plural = next((m for m in zh if isinstance(m.id, (tuple, list)) and m.id[0]), None)
    assert plural is not None, "no ngettext message in the catalogue"
    one, many = plural.id
    assert ngettext(one, many, 1) == one and ngettext(one, many, 3) == many
    with use_language("zh"):
        assert ngettext(one, many, 3) == ngettext(one, many, 1) == plural.string[0]  # Chinese: one form


@pytest.mark.parametrize("value, code", [("zh", "zh"), ("zh-CN", "zh"), ("zh_Hans_CN", "zh"), ("ZH", "zh"),
                                          ("en-GB", "en"), ("fr", None), ("", None), (None, None)])
def test_normalize_language(value, code):
    assert i18n.normalize_language(value) == code


IMPORT_IN_CHINESE = r"""
import importlib, pkgutil, re, sys
import transfer_core
from transfer_core.i18n import use_language
CJK = re.compile(r"[\u4e00-\u9fff]")
def texts(v, depth=0):
    if isinstance(v, str):
        yield v
    elif depth < 2 and isinstance(v, dict):
        for x in list(v.keys()) + list(v.values()):
            yield from texts(x, depth + 1)
    elif depth < 2 and isinstance(v, (list, tuple, set, frozenset)):
        for x in v:
            yield from texts(x, depth + 1)
bad = []
with use_language("zh"):
    names = [m.name for m in pkgutil.walk_packages(transfer_core.__path__, "transfer_core.")
             if not m.name.endswith(("__main__", "i18n_catalogue", ".i18n")) and ".distributed.worker" not in m.name]
    for name in names:
        try:
            mod = importlib.import_module(name)
        except Exception as exc:
            bad.append(f"{name}: import failed: {exc!r}")
            continue
        for key, value in vars(mod).items():
            if any(CJK.search(t) for t in texts(value)):
                bad.append(f"{name}.{key}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
"""


def test_importing_the_core_in_chinese_leaves_no_chinese_in_its_constants():
    """The first import of a module may happen on a Chinese session's thread: constants made then
    (a title read from a translated property, say) must not freeze Chinese for every later user."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", IMPORT_IN_CHINESE], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_core_errors_speak_the_sessions_language_and_stay_english_in_the_cli():
    from transfer_core.config import ConfigError, from_dict, validate

    bad = from_dict({"train": {"lr": -1}})
    with pytest.raises(ConfigError) as en:
        validate(bad)
    with use_language("zh"), pytest.raises(ConfigError) as zh:
        validate(bad)
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert "train.lr" in str(en.value) and not cjk.search(str(en.value))
    assert "train.lr" in str(zh.value) and cjk.search(str(zh.value))


def test_the_html_report_is_written_in_the_current_language(tmp_path):
    from seed_runs import demo_cfg, fake_run
    from transfer_core.report import html_report

    rid = fake_run(tmp_path, demo_cfg(0, "scratch"), 0.7)
    english = html_report(rid, tmp_path, samples_per_class=0)
    with use_language("zh"):
        chinese = html_report(rid, tmp_path, samples_per_class=0)
    def shown(html: str) -> str:  # the page's text, not the embedded plotly.js (which holds CJK locale data)
        return re.sub(r"<script.*?</script>", "", html, flags=re.S)

    assert "<html lang='en'>" in english and not re.search(r"[\u4e00-\u9fff]", shown(english))
    assert "<html lang='zh-CN'>" in chinese and len(re.findall(r"[\u4e00-\u9fff]", shown(chinese))) > 100
