"""transfer_core.present: the story of a run, a comparison, an experiment and a distillation; the decks read
back (python-pptx, the HTML's own text); the presenter's edits saved with the subject and used by both
decks; the time limit on drawing charts; the CLI's one-line errors.

One real tiny run (a confusion matrix and a checkpoint: the top-loss gallery) and a real tiny teacher and
student (what student_vs_teachers measures), the rest written as run folders without training
(tests/seed_runs.py). CPU only, seeded.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from conftest import tiny_config
from seed_runs import demo_cfg, fake_run, fake_sweep

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny tensors, one thread

STEP_IDS = ["question", "data", "method", "answer", "evidence", "fails", "takeaways"]


@pytest.fixture(scope="module")
def store(module_tmp, one_torch_thread):
    """A real tiny run; a source, transfer and scratch runs over seeds 0 and 1; a distillation's folder
    (no checkpoint); a finished built-in experiment (27 trials)."""
    from transfer_core.sweeps import builtin
    from transfer_core.training import run_training

    root = module_tmp / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(builtin.EXPERIMENT_ENV, raising=False)
        real = run_training(tiny_config(train__epochs=2), root)
        assert real.state == "completed", real.message
        src = fake_run(root, {**demo_cfg(0, "scratch"), "name": "source",
                              "data": {"dataset": "digits", "classes": [0, 1, 2], "image_size": 32}}, 0.95)
        transfer = [fake_run(root, demo_cfg(s, "transfer", source=f"run:{src}"), a) for s, a in enumerate([0.8, 0.9])]
        scratch = [fake_run(root, demo_cfg(s, "scratch"), a) for s, a in enumerate([0.6, 0.7])]
        student = fake_run(root, {**demo_cfg(0, "scratch"), "name": "student", "method": "distill",
                                  "backbones": [{"name": "mobilenet_v3_small", "weights": "none", "freeze": 0}],
                                  "distill": {"teachers": [f"run:{transfer[0]}"]}}, 0.75)
        sweep = fake_sweep(root)
    return {"root": root, "real": real.run.id, "source": src, "transfer": transfer, "scratch": scratch,
            "student": student, "sweep": sweep}


@pytest.fixture(scope="module")
def distilled(module_tmp, one_torch_thread):
    """A real tiny teacher (resnet18) and the squeezenet1_1 student it taught, digits 0–2 at 16 px: their
    checkpoints are what student_vs_teachers measures (parameters, exported size, time per image)."""
    from transfer_core.config import from_dict
    from transfer_core.training import run_training

    root = module_tmp / "distill-runs"
    teacher = run_training(tiny_config(name="teacher", data__train_per_class=6, data__image_size=16,
                                       train__batch_size=8), root)
    assert teacher.state == "completed", teacher.message
    student = run_training(from_dict({
        "seed": 0, "name": "student", "method": "distill",
        "data": {"dataset": "digits", "classes": [0, 1, 2], "train_per_class": 6, "val_fraction": 0.1, "image_size": 16},
        "backbones": [{"name": "squeezenet1_1", "weights": "none", "freeze": 0}],
        "distill": {"teachers": [f"run:{teacher.run.id}"], "temperature": 4.0, "weight": 0.9},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.003, "device": "cpu"},
    }), root)
    assert student.state == "completed", student.message
    return {"root": root, "teacher": teacher.run.id, "student": student.run.id}


def _story(store, subject, **kw):
    from transfer_core.present.story import build_story

    return build_story(subject, store["root"], **kw)


def _builds(spec):
    from transfer_core.present.figures import build

    fig = build(spec)
    assert fig is not None and (len(fig.data) > 0 or len(fig.layout.shapes) > 0), spec["kind"]  # method: shapes
    return fig


# --------------------------------------------------------------------------- stories


def test_a_run_tells_seven_steps_with_the_number_results_shows(store):
    from transfer_core.runs import RunStore

    story = _story(store, f"run:{store['real']}")
    assert [s.id for s in story.slides] == STEP_IDS
    assert story.title == "How well does resnet18, trained from scratch, recognise digits 0–2 from 12 labels each?"
    summary = RunStore(store["root"]).get(store["real"]).summary()
    answer = story.slide("answer")
    assert answer.numbers[0].value == f"{summary.val_acc:.1%}"  # what the Results page's metric shows
    assert [n.role for n in answer.numbers] == ["headline", "baseline", "spread"]
    assert answer.numbers[1].value == "33.3%" and answer.numbers[2].value == "one seed"  # guessing, and said plainly
    data = story.slide("data")
    assert [f["kind"] for f in data.figures] == ["counts"] and data.pictures[0].kind == "samples"
    assert data.pictures[0].png.startswith(b"\x89PNG")
    method = story.slide("method").figures[0]
    assert method["kind"] == "method" and [g[0] for g in method["args"]["backbones"][0]["groups"]][0] == "stem"
    fails = story.slide("fails")
    assert [f["kind"] for f in fails.figures] == ["confusion"] and fails.pictures[0].kind == "top_losses"
    assert store["real"] in story.slide("answer").notes and "Config:" in story.slide("method").notes
    assert story.slide("takeaways").bullets and story.slide("takeaways").bullets == story.computed_takeaways
    for s in story.slides:
        for spec in s.figures:
            _builds(spec)


def test_a_transfer_run_answers_against_its_scratch_twin_over_seeds(store):
    story = _story(store, f"run:{store['transfer'][0]}", images=False)
    assert story.title == "Does pretraining on digits 0–2 help recognise 3–5 from 5 labels each?"
    answer = story.slide("answer")
    assert answer.title == "The answer: yes — 80.0% against 65.0% from scratch"  # paired interval above 0
    assert answer.numbers[1].label == "The same task, scratch" and answer.numbers[1].sub.endswith("(2 seeds)")
    assert answer.numbers[2].value == "85.0 ± 63.5 %"  # seed_note's card: mean ± 95 % half-width over 2 seeds
    assert any(t.startswith("Paired by seed, transfer beats scratch by 20.0") for t in story.computed_takeaways)
    assert "ONE SEED" not in answer.numbers[2].value.upper()


def test_a_comparison_names_the_winner_and_pairs_seeds(store):
    a, b = store["transfer"][0], store["scratch"][0]
    story = _story(store, f"runs:{a},{b}", images=False)
    assert story.kind == "compare" and story.subject == f"runs:{a},{b}"
    assert story.title == "Which recognises digits 3–5 best from 5 labels each: transfer or scratch?"
    answer = story.slide("answer")
    assert answer.title == "The answer: transfer leads by 20.0 points"
    assert answer.numbers[0].value == "80.0%" and answer.numbers[1].value == "60.0%"
    assert any("Paired by seed, transfer beats scratch" in b for b in answer.bullets)
    assert [f["kind"] for f in story.slide("evidence").figures] == ["kind_bars", "compare_curves"]
    assert any(line.startswith("backbones.0.weights:") for line in story.slide("method").bullets)
    assert Path(story.folder).parent.name == "_present"  # a comparison's notes live under <runs>/_present


def test_an_experiment_tells_its_headline_and_draws_its_figure(store):
    from transfer_core.sweeps import builtin
    from transfer_core.sweeps.folder import read_results
    from transfer_core.sweeps.headlines import headline_for

    story = _story(store, "sweep:labels", images=False)
    assert story.kind == "sweep" and Path(story.folder) == store["sweep"].resolve()
    assert story.title == builtin.EXPERIMENTS["labels"].title
    answer = story.slide("answer")
    assert answer.lead == headline_for(read_results(store["sweep"]), "labels")
    assert answer.numbers[0].label == "transfer, 10 labels per class" and "±" in answer.numbers[0].value
    assert answer.numbers[1].label == "scratch, 10 labels per class"
    fig = _builds(story.slide("evidence").figures[0])
    assert sum(len(t.x) for t in fig.data if t.meta == "seed") == 27  # every trial a dot, as on the Experiments page
    assert story.slide("takeaways").bullets[0] == answer.lead


def test_a_distillation_shows_the_rows_and_sentence_of_student_vs_teachers(distilled):
    from transfer_core.distill.versus import student_vs_teachers
    from transfer_core.present.story import build_story

    story = build_story(f"run:{distilled['student']}", distilled["root"], images=False)
    assert story.kind == "distill" and story.subject.startswith("distill:")
    assert [s.id for s in story.slides] == STEP_IDS
    svt = student_vs_teachers(distilled["student"], distilled["root"])  # measured once: cost.json
    rows = svt["rows"]
    assert [r["role"] for r in rows] == ["student", "teacher"] and rows[1]["run_id"] == distilled["teacher"]
    method = story.slide("method")
    assert method.title == "The method: teachers and a student"
    teachers = method.figures[0]["args"]["teachers"]
    assert len(teachers) == 1 and teachers[0]["acc"] == rows[1]["val_acc"] and teachers[0]["name"] == "resnet18"
    evidence = story.slide("evidence")
    assert evidence.title == "The evidence: student against teachers"
    assert evidence.figures[0]["kind"] == "distill" and evidence.figures[0]["args"]["rows"] == rows
    assert evidence.notes.startswith("Rows: " + "; ".join(json.dumps(r, default=str) for r in rows))
    answer = story.slide("answer")
    assert answer.numbers[0].value == f"{rows[0]['val_acc']:.1%}"
    assert answer.numbers[1].label == "Best teacher: teacher" and answer.numbers[1].value == f"{rows[1]['val_acc']:.1%}"
    assert answer.bullets[0] == svt["sentence"] and "of teacher's accuracy" in svt["sentence"]
    assert story.slide("takeaways").bullets[1] == svt["sentence"]
    # one seed: it points at the experiment that settles a distillation (not the labels one)
    said = " ".join(answer.bullets + story.slide("takeaways").bullets)
    assert "Compress the model" in said and "/experiments?exp=compress" in said and "How many labels" not in said
    assert "over 5 seeds" not in said and "from 1 teacher and keep its accuracy?" in story.title
    assert "unlabeled training images, through its teachers only" in story.slide("data").lead
    _builds(evidence.figures[0])
    _builds(method.figures[0])


def test_a_distillation_without_checkpoints_still_tells_its_story(store):
    story = _story(store, f"run:{store['student']}", images=False)  # a run folder without training
    assert story.kind == "distill" and [s.id for s in story.slides] == STEP_IDS
    method = story.slide("method")
    assert method.title == "The method: teachers and a student" and "its frozen teachers" in method.lead
    evidence = story.slide("evidence")
    assert "distill" not in [f["kind"] for f in evidence.figures]
    assert evidence.lead.startswith("The student and its teachers are measured from their final checkpoints: ")


def test_subjects_parse_and_say_what_is_wrong(store):
    from transfer_core.present.subject import parse_subject

    root = store["root"]
    assert parse_subject(store["real"], root).kind == "run"  # a bare id
    assert parse_subject(f"distill:{store['student']}", root).kind == "distill"
    assert parse_subject("labels", root).kind == "sweep"  # a built-in experiment's id: its newest folder
    assert parse_subject(f"compare:{store['real']},{store['scratch'][0]}", root).key.startswith("runs:")
    for bad, msg in (("", "name a subject"), ("run:nope", "no run 'nope'"), (f"runs:{store['real']}", "two runs"),
                     ("sweep:nope", "no sweep 'nope'"), (f"distill:{store['real']}", "not a distillation")):
        with pytest.raises(ValueError, match=msg):
            parse_subject(bad, root)


# --------------------------------------------------------------------------- decks


@pytest.fixture(scope="module")
def deck(store):
    """The real run's PowerPoint deck, charts drawn by kaleido with the system's Chromium (once per module)."""
    from transfer_core.present.pptx import pptx_bytes
    from transfer_core.present.render import browser_path

    if not browser_path():
        pytest.skip("no Chrome/Chromium for kaleido (apt-get install chromium)")
    story = _story(store, f"run:{store['real']}")
    return story, pptx_bytes(story)


def _texts(slide) -> list[str]:
    return [sh.text_frame.text for sh in slide.shapes if sh.has_text_frame]


def test_pptx_reads_back_titles_pictures_numbers_and_notes(deck, store):
    from pptx import Presentation
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    story, data = deck
    prs = Presentation(io.BytesIO(data))
    assert len(prs.slides) == len(story.slides) == 7
    for slide, s in zip(prs.slides, story.slides):
        assert s.title in _texts(slide), s.id
        pictures = [sh for sh in slide.shapes if sh.shape_type == MSO_SHAPE_TYPE.PICTURE]
        assert len(pictures) == len(s.figures) + len(s.pictures), s.id  # every chart and image is a picture
        if s.figures:
            assert pictures, s.id
        assert slide.has_notes_slide and slide.notes_slide.notes_text_frame.text.strip(), s.id
    answer = prs.slides[STEP_IDS.index("answer")]
    assert story.slide("answer").numbers[0].value in _texts(answer)  # the headline is real text
    assert store["real"] in prs.slides[STEP_IDS.index("answer")].notes_slide.notes_text_frame.text
    assert "Config:" in prs.slides[STEP_IDS.index("method")].notes_slide.notes_text_frame.text


def test_html_deck_is_one_offline_file_with_every_slide(store):
    from transfer_core.present.html_deck import html_deck

    story = _story(store, f"run:{store['real']}")
    html = html_deck(story)
    assert html.count("<section class='slide") == 7
    assert html.count("window.PlotlyConfig") == 1  # plotly.js inlined once
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.I)
    assert not re.search(r"<(link|img)[^>]*(href|src)\s*=\s*['\"]?(https?:)?//", html, re.I)
    assert html.count("src='data:image/png;base64,") == 2  # the sample grid and the top-loss gallery
    assert "ArrowRight" in html and "history.replaceState" in html
    for s in story.slides:
        assert re.sub(r"&#x27;", "'", s.title.replace("&", "&amp;")) in html.replace("&#x27;", "'")


def test_edits_are_saved_with_the_subject_and_reach_both_decks(store):
    from transfer_core.present.html_deck import html_deck
    from transfer_core.present.notes import NOTES_NAME, load_notes, save_notes
    from transfer_core.present.pptx import pptx_bytes

    subject = f"run:{store['scratch'][1]}"
    story = _story(store, subject, images=False)
    save_notes(story.folder, story.subject, titles={"answer": "Our answer: it works"},
               takeaways=["Ship the transfer model.", "Label 10 more per class."], notes="Ask about the budget.")
    assert (Path(story.folder) / NOTES_NAME).is_file() and Path(story.folder).name == store["scratch"][1]
    edited = _story(store, subject, images=False)
    assert edited.slide("answer").title == "Our answer: it works"
    assert edited.slide("answer").computed_title == story.slide("answer").title
    assert edited.slide("takeaways").bullets == ["Ship the transfer model.", "Label 10 more per class."]
    assert edited.presenter_notes == "Ask about the budget."
    html = html_deck(edited)
    assert "Our answer: it works" in html and "Ship the transfer model." in html and "Ask about the budget." in html
    png = edited.slide("data").pictures[0].png if edited.slide("data").pictures else _tiny_png()
    data = pptx_bytes(edited, render=lambda figs, sizes: [png] * len(figs))  # no browser needed for the text
    from pptx import Presentation

    prs = Presentation(io.BytesIO(data))
    text = "\n".join(t for sl in prs.slides for t in _texts(sl))
    assert "Our answer: it works" in text and "Ship the transfer model." in text and "Ask about the budget." in text
    # back to the computed takeaways; an empty title drops its edit
    save_notes(story.folder, story.subject, titles={"answer": ""}, reset_takeaways=True)
    assert load_notes(story.folder)["titles"] == {} and load_notes(story.folder)["takeaways"] is None
    (Path(story.folder) / NOTES_NAME).write_text("{not json", encoding="utf-8")
    assert load_notes(story.folder) == {"titles": {}, "takeaways": None, "notes": ""}


def _tiny_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buf, "PNG")
    return buf.getvalue()


def test_drawing_charts_is_time_limited_and_says_why(monkeypatch):
    import plotly.graph_objects as go

    from transfer_core.present.render import RenderError, browser_path, render_pngs

    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    if browser_path():
        with pytest.raises(RenderError, match=r"took longer than 0.2 s and was stopped"):
            render_pngs([fig], [(200, 100)], timeout_s=0.2)
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chrome")
    with pytest.raises(RenderError, match="no Chrome or Chromium found"):
        render_pngs([fig], [(200, 100)])


def test_the_report_links_to_the_deck(store):
    from transfer_core.present.decks import write_deck
    from transfer_core.report import html_report
    from transfer_core.runs import RunStore

    run = RunStore(store["root"]).get(store["transfer"][1])
    assert "id='deck'" in html_report(run) and "href='deck.html'" not in html_report(run)
    path = write_deck(_story(store, f"run:{run.id}", images=False), "html")
    assert path == run.dir / "deck.html"
    assert "href='deck.html'" in html_report(run)


def test_one_figure_source_for_the_pages_and_the_decks():
    import dashboard.charts as charts
    import dashboard.charts_sweeps as charts_sweeps
    from transfer_core.present import figures, figures_sweeps

    assert charts_sweeps.labels_figure is figures_sweeps.labels_figure
    assert charts.kind_bar_figure is figures.kind_bar_figure and charts.counts_figure is figures.counts_figure


# --------------------------------------------------------------------------- CLI


def _cli(capsys, *args) -> tuple[int, list[str], list[str]]:
    from transfer_core.cli import main

    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, [ln for ln in out.splitlines() if ln.strip()], [ln for ln in err.splitlines() if ln.strip()]


@pytest.mark.parametrize("args, needle", [
    ((), "choose a format"),
    (("--format", "pptx"), "name a subject"),
    (("run:nope", "--format", "pptx"), "no run 'nope'"),
    (("{real}", "--format", "pdf"), "unknown format 'pdf'"),
    (("{real}", "--format", "html", "--out", "/nonexistent/deck.html"), "the folder /nonexistent does not exist"),
    (("{real}", "--format", "html", "--out", "{root}"), "it is a folder"),
    (("{real}", "--format", "pptx", "--lang", "xx"), "unknown language 'xx': use --lang en or --lang zh"),
])
def test_cli_bad_input_is_one_error_line(store, capsys, args, needle):
    args = [a.format(real=f"run:{store['real']}", root=store["root"]) for a in args]
    rc, _, err = _cli(capsys, "present", *args, "--runs-dir", store["root"])
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err


def test_cli_writes_the_html_deck_and_prints_its_path(store, capsys, tmp_path):
    rc, out, _ = _cli(capsys, "present", f"runs:{store['transfer'][0]},{store['scratch'][0]}", "--format", "html",
                      "--out", tmp_path / "talk.html", "--runs-dir", store["root"])
    assert rc == 0 and out[-1] == str(tmp_path / "talk.html")
    assert (tmp_path / "talk.html").read_text(encoding="utf-8").count("<section class='slide") == 7


# --------------------------------------------------------------------------- in Chinese

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_cli_writes_a_chinese_pptx_deck_with_east_asian_fonts(store, capsys, tmp_path, monkeypatch):
    """``--lang zh``: Chinese titles, every run (notes too) names its East-Asian font, the charts handed to the
    renderer were built in Chinese with CJK fonts (the renderer is faked: no browser needed)."""
    from pptx import Presentation
    from pptx.oxml.ns import qn

    import transfer_core.present.pptx as pptx_mod
    from transfer_core.i18n import use_language

    drawn = []
    monkeypatch.setattr(pptx_mod, "render_pngs", lambda figs, sizes: drawn.extend(figs) or [_tiny_png()] * len(figs))
    subject, path = f"run:{store['transfer'][1]}", tmp_path / "talk.pptx"
    rc, out, err = _cli(capsys, "present", subject, "--format", "pptx", "--lang", "zh", "--out", path,
                        "--runs-dir", store["root"])
    assert rc == 0 and out[-1] == str(path), err
    with use_language("zh"):
        story = _story(store, subject, images=False)
    prs = Presentation(str(path))
    for slide, s in zip(prs.slides, story.slides, strict=True):
        assert s.title in _texts(slide) and CJK.search(s.title), s.title
        frames = [sh.text_frame for sh in slide.shapes if sh.has_text_frame] + [slide.notes_slide.notes_text_frame]
        for r in (r for tf in frames for p in tf.paragraphs for r in p.runs):
            assert r._r.find(qn("a:rPr")).find(qn("a:ea")).get("typeface") == "Microsoft YaHei", r.text
    assert drawn and all("Noto Sans CJK SC" in f.layout.font.family for f in drawn)
    assert any(CJK.search(json.dumps(f.to_plotly_json(), default=str, ensure_ascii=False)) for f in drawn)


def test_html_deck_in_chinese_says_so_and_has_chinese_titles(store):
    from transfer_core.i18n import use_language
    from transfer_core.present.html_deck import html_deck

    with use_language("zh"):
        html = html_deck(_story(store, f"run:{store['scratch'][0]}", images=False))
    titles = re.findall(r"<h1>(.*?)</h1>", html)
    assert "<html lang='zh-CN'>" in html and '"Noto Sans CJK SC"' in html
    assert len(titles) == 7 and all(CJK.search(t) for t in titles), titles
