"""A self-contained HTML report of one run, for people who will never open the dashboard.

One file, no network: the plotly.js bundle is inlined once (with the first figure) and
images are inline base64 PNGs, so the report opens offline, from an e-mail attachment
or a USB stick. Sections: headline numbers, how the model was trained, learning
curves, fusion weights (fusion runs), confusion matrix, per-class table, sample
predictions and the full configuration, and a link to the run's slide deck.

The figures and the sentences are the ones the Present page and its decks show
(:mod:`transfer_core.present.figures`, :mod:`transfer_core.present.sentences`): one source.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from .compare import run_kind
from .config import dump_yaml
from .i18n import _, ngettext
from .present.figures import alpha_figure, cjk_font, confusion_figure, curves_figure
from .present.html_deck import html_lang
from .present.sentences import backbone_text, duration_text, kind_text, kind_word, list_words, verdict
from .runs import Run, RunStore, atomic_write_text
from .seeds import seed_note

__all__ = ["html_report", "write_report", "REPORT_NAME"]

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
#: The slide deck of the run (:mod:`transfer_core.present`), written next to the report.
DECK_NAME = "deck.html"

_CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,"Noto Sans CJK SC","PingFang SC",
 "Microsoft YaHei",sans-serif;margin:0;
 background:#f8fafc;color:#0f172a;line-height:1.45}
main{max-width:1080px;margin:0 auto;padding:28px 28px 40px}
header{background:linear-gradient(120deg,#1e3a8a,#2563eb);color:white;padding:30px 0 64px}
header .inner{max-width:1080px;margin:0 auto;padding:0 28px}
header h1{margin:0 0 6px;font-size:28px;font-weight:700}
header p{margin:0;opacity:.9;font-size:15px}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;background:rgba(255,255,255,.18);font-size:13px;margin-right:6px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:14px;margin:-44px 0 16px}
.verdict{font-size:16px;margin:0 0 18px;padding:12px 16px;background:#eff6ff;border-left:4px solid #2563eb;border-radius:8px}
.card{background:white;border-radius:12px;padding:14px 16px;box-shadow:0 1px 3px rgba(15,23,42,.12)}
.card .label{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#64748b}
.card .value{font-size:26px;font-weight:700;margin-top:2px}
.card .sub{font-size:12px;color:#64748b}
section{background:white;border-radius:12px;padding:18px 22px;margin:0 0 18px;box-shadow:0 1px 3px rgba(15,23,42,.08)}
h2{font-size:19px;margin:0 0 4px}
.lead{color:#475569;margin:0 0 12px;font-size:14px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:6px 10px;border-bottom:1px solid #e2e8f0;text-align:left}
th{background:#f1f5f9;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.tag{display:inline-block;font-size:11px;padding:0 6px;border-radius:999px;background:#fee2e2;color:#b91c1c;margin-left:6px}
tr.weak td{background:#fef2f2}
td:first-child,td.rec{white-space:nowrap;font-variant-numeric:tabular-nums}
.track{display:inline-block;width:60px;height:8px;border-radius:4px;background:#e2e8f0;vertical-align:middle;margin-right:6px;overflow:hidden}
.bar{display:block;height:8px;border-radius:4px;background:#60a5fa}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(120px,1fr));gap:12px}
figure{margin:0;text-align:center;font-size:13px}
figure img{width:96px;height:96px;image-rendering:pixelated;border-radius:8px;border:4px solid #e2e8f0}
figure.ok img{border-color:#86efac} figure.bad img{border-color:#fca5a5}
figure .pred{font-weight:600} figure.bad .pred{color:#b91c1c} figure.ok .pred{color:#15803d}
figure .true{color:#64748b}
.two{display:grid;grid-template-columns:1fr 1fr;gap:18px}
@media (max-width:820px){.two{grid-template-columns:1fr}}
details summary{cursor:pointer;color:#2563eb;font-size:14px;margin:4px 0}
pre{background:#0f172a;color:#e2e8f0;padding:14px;border-radius:8px;overflow:auto;font-size:12.5px}
.note{color:#64748b;font-size:13px}
footer{color:#94a3b8;font-size:12px;text-align:center;margin-top:10px}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


# --------------------------------------------------------------------------- figures


class _Figures:
    """Figure HTML with plotly.js inlined exactly once (with the first figure)."""

    def __init__(self) -> None:
        self.count = 0

    def html(self, fig: go.Figure, div_id: str) -> str:
        # A fixed pixel height: "100%" (plotly's default) collapses inside a flowing page
        # and the figure then spills over the next section.
        height = int(fig.layout.height or 360)
        cjk_font(fig)
        out = fig.to_html(full_html=False, include_plotlyjs=self.count == 0, div_id=div_id,
                          config={"displayModeBar": False, "responsive": True}, default_width="100%",
                          default_height=f"{height}px")
        self.count += 1
        return out


# --------------------------------------------------------------------------- sample predictions


def _png_b64(img: Any, size: int = 96) -> str:
    from PIL import Image

    im = Image.fromarray(img)
    if im.width < size:
        im = im.resize((size, size), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _samples(run: Run, runs_root: str | Path | None, per_class: int, max_total: int) -> tuple[list[dict[str, Any]], str]:
    """A few validation images with prediction and truth; ([], reason) when not possible."""
    import numpy as np
    import torch

    from .data import build_data
    from .insights.val_pass import val_batch, val_image
    from .predict import load_run_model

    try:
        loaded = load_run_model(run, runs_root)
        bundle = build_data(loaded.cfg.data, loaded.cfg.seed)
    except Exception as exc:  # the data may be gone, the checkpoint missing: the report still renders
        return [], _("sample predictions are not available: {why}").format(why=str(exc).splitlines()[0][:200])
    labels = bundle.val.labels.long().numpy()
    picks: list[int] = []
    for c in range(len(bundle.classes)):
        picks.extend(np.flatnonzero(labels == c)[:per_class].tolist())
    picks = sorted(picks)[:max_total] if len(picks) > max_total else picks
    if not picks:
        return [], _("the validation split is empty")
    with torch.no_grad():
        probs = torch.softmax(loaded.model(val_batch(bundle.val, picks)), dim=1)
    out = []
    for row, i in enumerate(picks):
        p = int(probs[row].argmax())
        out.append({
            "png": _png_b64(val_image(bundle, i)),
            "pred": str(loaded.classes[p]),
            "true": str(loaded.classes[int(labels[i])]),
            "prob": float(probs[row, p]),
        })
    return out, ""


# --------------------------------------------------------------------------- the report


def _card(label: str, value: str, sub: str = "") -> str:
    return (f'<div class="card"><div class="label">{_esc(label)}</div><div class="value">{_esc(value)}</div>'
            f'<div class="sub">{_esc(sub)}</div></div>')


def _per_class_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="note">' + _esc(_("No per-class results were recorded.")) + "</p>"
    weakest = min(rows, key=lambda r: r.get("f1", 0.0)).get("class")
    tag = "<span class=tag>" + _esc(_("weakest")) + "</span>"
    body = []
    for r in rows:
        weak = r.get("class") == weakest and len(rows) > 1
        rec = float(r.get("recall", 0.0))
        body.append(
            f'<tr class="{"weak" if weak else ""}"><td>{_esc(r.get("class"))}'
            f'{tag if weak else ""}</td>'
            f'<td class="rec"><span class="track"><span class="bar" style="width:{int(rec * 60)}px"></span></span>{rec:.0%}</td>'
            f'<td class="num">{float(r.get("precision", 0.0)):.0%}</td>'
            f'<td class="num">{float(r.get("f1", 0.0)):.2f}</td><td class="num">{int(r.get("support", 0))}</td></tr>'
        )
    heads = (_("class"), _("recall (found)"), _("precision (right when it says so)"), "F1", _("images"))
    return ("<table><thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in heads) + "</tr></thead><tbody>"
            + "".join(body) + "</tbody></table>")


def _deck_link(run: Run) -> str:
    """A link to the run's slide deck (``deck.html`` next to the report), or how to make one."""
    how = _esc(_("build it on the dashboard's Present page or with {command} (or {pptx} for PowerPoint)")).format(
        command=f"<code>python -m transfer_core present run:{_esc(run.id)} --format html</code>",
        pptx="<code>--format pptx</code>")
    if (run.dir / DECK_NAME).is_file():
        return "<p class='note' id='deck'>" + _esc(_(
            "Presenting this run? {link_start}Open its slide deck{link_end} (the same numbers and figures, one slide at "
            "a time; ← → to step). To refresh it, {how}.")).format(
            link_start=f"<a href='{DECK_NAME}'>", link_end="</a>", how=how) + "</p>"
    return "<p class='note' id='deck'>" + _esc(_(
        "Presenting this run? A slide deck tells the same story one slide at a time: {how}.")).format(how=how) + "</p>"


def html_report(run: Run | str | Path, runs_root: str | Path | None = None, samples_per_class: int = 2,
                max_samples: int = 16) -> str:
    """The report of ``run`` as one self-contained HTML string."""
    if not isinstance(run, Run):
        run = RunStore(runs_root).get(str(run))
    cfg = run.config_dict()
    status = run.status()
    metrics = run.metrics()
    summary = run.summary()
    conf = run.confusion()
    per_class = run.per_class() or []
    kind = run_kind(cfg)
    data = cfg.get("data") or {}
    train = cfg.get("train") or {}
    names = [str(b.get("name", "?")) for b in cfg.get("backbones") or []]
    n_classes = len(conf["labels"]) if conf else len(data.get("classes") or []) or None
    title = cfg.get("name") or f"{kind_word(kind).capitalize()} · {' + '.join(names)}"
    figs = _Figures()
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    page_title = _esc(_("Transfer Lab report · {title}").format(title=title))
    when = _esc(_("report of {when}").format(when=now))
    what = _("{models} on {dataset}").format(models=_esc(" + ".join(names)),
                                            dataset=f"<b>{_esc(data.get('dataset', '?'))}</b>")
    if n_classes:
        what += " · " + _esc(ngettext("{n} class", "{n} classes", n_classes).format(n=n_classes))

    out: list[str] = [
        f"<!DOCTYPE html><html lang='{html_lang()}'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{page_title}</title><style>{_CSS}</style></head><body>",
        "<header><div class='inner'>",
        f"<h1>{_esc(title)}</h1>",
        f"<p><span class='badge'>{_esc(kind_word(kind))}</span><span class='badge'>{_esc(summary.state)}</span>"
        f"{what} · {when}</p>",
        "</div></header><main>",
        "<div class='cards'>",
        _card(_("Validation accuracy"), _pct(summary.val_acc), _("on images the model never trained on")),
        _card(_("Best epoch accuracy"), _pct(summary.best_val_acc), _("best validation accuracy of any epoch")),
        _card(_("Epochs"), f"{summary.epochs_done} / {summary.epochs}", _("passes over the training images")),
        _card(_("Training time"), duration_text(status) or "—", str(status.get("device", "")) or ""),
    ]
    try:  # siblings over seeds: completed runs of the run's store (its folder's parent) with the same settings
        note = seed_note(RunStore(run.dir.parent), run.id, cfg) if summary.state == "completed" else None
    except Exception as exc:  # noqa: BLE001 - the report renders without it
        log.warning("report: no seed comparison for %s: %s", run.id, exc)
        note = None
    out.append((_card(_("Over seeds"), note["card"], note["sub"]) if note else "") + "</div>")
    short = verdict(summary.val_acc, n_classes, per_class, conf, em=lambda t: f"<b>{t}</b>", esc=_esc)
    if short:
        out.append(f"<p class='verdict'>{short}{' ' + _esc(note['sentence']) if note else ''}</p>")
    out.append(_deck_link(run))

    out.append(_section("summary", _("How this model was trained"), _("{kind}.").format(kind=kind_text(kind)))
               + "<table><tbody>")
    classes = list_words([str(c) for c in data["classes"]]) if data.get("classes") else _("all")
    about = {"dataset": data.get("dataset", "?"), "classes": classes, "size": data.get("image_size", "?"),
             "n": data.get("train_per_class")}
    rows = [
        (_("Data"), _("{dataset}, classes: {classes}, {size} px images, {n} training images per class").format(**about)
         if data.get("train_per_class") else _("{dataset}, classes: {classes}, {size} px images").format(**about)),
        (_("Backbones") if len(names) > 1 else _("Backbone"), backbone_text(cfg)),
    ]
    if kind == "fusion":
        f = cfg.get("fusion") or {}
        fusion = {"mode": f.get("mode", "?"), "n": len(names), "dim": f.get("shared_dim", "?")}
        rows.append((_("Fusion"), _("{mode} of {n} projected features, shared size {dim}, weights α learned").format(
            **fusion) if f.get("learn_alpha") else _("{mode} of {n} projected features, shared size {dim}").format(
            **fusion)))
    rows.append((_("Training"), _("{epochs} epochs, {optimizer} optimizer, learning rate {lr}, batch size {batch}").format(
        epochs=train.get("epochs", "?"), optimizer=train.get("optimizer", "?"), lr=train.get("lr", "?"),
        batch=train.get("batch_size", "?"))))
    rows.append((_("Outcome"), status.get("message") or summary.state))
    out.extend(f"<tr><th style='width:160px'>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    out.append("</tbody></table></section>")

    out.append(_section("curves", _("Learning curves"), _(
        "If the validation line follows the training line, the model learned patterns that carry over to new images; "
        "a widening gap means it memorised the training set.")))
    out.append(figs.html(curves_figure(metrics), "fig-curves") if metrics else _note(_("No epoch finished.")))
    out.append("</section>")

    alpha_fig = alpha_figure(metrics, names) if kind == "fusion" else None
    if alpha_fig is not None:
        out.append(_section("alpha", _("How much each backbone counts"), _(
            "The fusion weights α the model learned: a larger weight means that backbone's features count more.")))
        out.append(figs.html(alpha_fig, "fig-alpha") + "</section>")

    out.append(_section("confusion", _("Where it goes wrong"), _(
        "Rows are the true classes, columns what the model answered; the diagonal is right. Numbers are validation "
        "images.")) + "<div class='two'><div>")
    out.append(figs.html(confusion_figure(conf), "fig-confusion") if conf else _note(_("No confusion matrix recorded.")))
    out.append("</div><div id='per-class'><h3 style='margin:4px 0 8px;font-size:16px'>" + _esc(_("Per class")) + "</h3>")
    out.append(_per_class_table(per_class) + "</div></div></section>")

    samples, why = _samples(run, runs_root, samples_per_class, max_samples)
    out.append(_section("samples", _("Sample predictions"), _(
        "Validation images with the model's answer (green: right, red: wrong) and its confidence.")))
    if samples:
        out.append("<div class='grid'>")
        for s in samples:
            ok = s["pred"] == s["true"]
            alt = _esc(_("validation image of {name}").format(name=s["true"]))
            true = _esc(_("true: {name}").format(name=s["true"]))
            out.append(f"<figure class='{'ok' if ok else 'bad'}'><img alt='{alt}' "
                       f"src='data:image/png;base64,{s['png']}'><figcaption><div class='pred'>{'✓' if ok else '✗'} "
                       f"{_esc(s['pred'])} "
                       f"· {s['prob']:.0%}</div><div class='true'>{true}</div></figcaption></figure>")
        out.append("</div>")
    else:
        out.append(_note(why))
    out.append("</section>")

    lead = _esc(_("Everything needed to reproduce this run: {command}.")).format(
        command="<code>python -m transfer_core train config.yaml</code>")
    heading, show = _esc(_("Full configuration")), _esc(_("Show the YAML configuration"))
    out.append(f"<section id='config'><h2>{heading}</h2><p class='lead'>{lead}</p><details>"
               f"<summary>{show}</summary><pre>{_esc(dump_yaml(cfg))}</pre></details></section>")
    footer = _esc(_("Transfer Lab · run {run}").format(run=run.id))
    out.append(f"<footer>{footer}</footer></main></body></html>")
    return "\n".join(out)


def _section(sid: str, title: str, lead: str) -> str:
    """A section's opening: its title and lead sentence (escaped)."""
    return f"<section id='{sid}'><h2>{_esc(title)}</h2><p class='lead'>{_esc(lead)}</p>"


def _note(text: str) -> str:
    return f"<p class='note'>{_esc(text)}</p>"


def write_report(run: Run | str | Path, runs_root: str | Path | None = None) -> Path:
    """Write ``report.html`` into the run folder (atomically) and return its path."""
    if not isinstance(run, Run):
        run = RunStore(runs_root).get(str(run))
    path = run.dir / REPORT_NAME
    atomic_write_text(path, html_report(run, runs_root))
    return path
