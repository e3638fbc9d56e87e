"""The live view's SVG charts (dashboard.charts_live): what they plot, their axes, escaping, language."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from dashboard import charts_live
from transfer_core.i18n import use_language

NS = {"s": "http://www.w3.org/2000/svg"}


def _rows(n: int, **extra) -> list[dict]:
    return [{"epoch": e, "train_loss": 2.3 / e, "val_loss": 2.0 / e, "train_acc": 0.5 + e / 10, "val_acc": 0.4 + e / 10,
             **extra} for e in range(1, n + 1)]


def _svg(text: str) -> ET.Element:
    root = ET.fromstring(text)  # well-formed XML, or this raises
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_live_curves_plot_every_epoch_of_train_and_val_loss_and_accuracy():
    root = _svg(charts_live.live_curves_svg(_rows(3), epochs=10))
    assert root.get("data-epochs") == "1,2,3"
    assert len(root.findall("s:polyline", NS)) == 4  # train/val x loss/acc
    tips = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert len(tips) == 12
    assert "val acc · epoch 3: 0.7" in tips and "train loss · epoch 1: 2.3" in tips
    texts = _texts(root)
    assert {"Loss", "Accuracy", "train loss", "val loss", "train acc", "val acc"} <= set(texts)
    assert "10" in texts  # the x axis runs to the planned epochs, not to the 3 done


def test_live_curves_y_axis_has_round_ticks_above_the_largest_loss():
    texts = _texts(_svg(charts_live.live_curves_svg(_rows(2), epochs=4)))
    assert {"0", "1", "2", "3"} <= set(texts)  # loss up to 2.3: whole steps to 3
    assert {"0.25", "0.75"} <= set(texts)  # accuracy: 0 to 1 in quarters
    assert not any(len(t) > 4 and t[0].isdigit() for t in texts)  # no 1.875-style ticks


def test_live_curves_mark_where_the_body_unfreezes():
    rows = _rows(3)
    for r, phase in zip(rows, ("head", "head", "body")):
        r["phase"] = phase
    root = _svg(charts_live.live_curves_svg(rows, epochs=3))
    assert _texts(root).count("body unfreezes") == 1  # labelled once, the line drawn in both panels
    assert len([ln for ln in root.findall("s:line", NS) if ln.get("stroke-dasharray") == "2 3"]) == 2
    assert "body unfreezes" not in _texts(_svg(charts_live.live_curves_svg(_rows(3), epochs=3)))


def test_live_curves_without_metrics_draw_empty_axes():
    root = _svg(charts_live.live_curves_svg([], epochs=5))
    assert root.get("data-epochs") == "" and not root.findall("s:polyline", NS)
    assert "Loss" in _texts(root)


def test_live_alpha_escapes_backbone_names():
    rows = [{"epoch": e, "alpha": [0.3, 0.7]} for e in (1, 2)]
    text = charts_live.live_alpha_svg(rows, ["<b>evil</b>", "resnet18"], epochs=2)
    assert "<b>" not in text
    root = _svg(text)
    assert "α1 <b>evil</b>" in _texts(root) and len(root.findall("s:polyline", NS)) == 2


def test_live_loss_parts_use_a_log_axis_when_the_parts_differ_tenfold():
    rows = [{"epoch": e, "train_ce": 2.0 / e, "train_kd": 0.01 / e} for e in (1, 2, 3)]
    texts = _texts(_svg(charts_live.live_loss_parts_svg(rows, epochs=3, weight=0.9)))
    assert {"0.001", "0.01", "0.1", "1", "10"} & set(texts) >= {"0.01", "0.1", "1"}
    assert any("0.1·CE + 0.9·KD" in t for t in texts)
    close = [{"epoch": e, "train_ce": 1.0, "train_kd": 0.5} for e in (1, 2)]
    assert "0.01" not in _texts(_svg(charts_live.live_loss_parts_svg(close, epochs=2)))


def test_live_curves_speak_chinese_in_a_chinese_session():
    with use_language("zh"):
        texts = _texts(_svg(charts_live.live_curves_svg(_rows(2), epochs=2)))
    assert "损失" in texts and "准确率" in texts and "Loss" not in texts


def test_a_long_legend_wraps_inside_the_chart():
    rows = [{"epoch": 1, "alpha": [0.25] * 4}, {"epoch": 2, "alpha": [0.25] * 4}]
    names = ["efficientnet_b0_with_a_long_name", "mobilenet_v3_large", "regnet_y_400mf", "convnext_tiny"]
    root = _svg(charts_live.live_alpha_svg(rows, names, epochs=2))
    width, height = (float(v) for v in root.get("viewBox").split()[2:])
    legend = [ln for ln in root.findall("s:line", NS) if ln.get("stroke-width") == "2"]
    assert len(legend) == 4 and all(float(ln.get("x2")) < width for ln in legend)
    rows_y = {float(ln.get("y1")) for ln in legend}
    assert len(rows_y) > 1 and max(rows_y) < height


def test_a_long_run_is_thinned_to_at_most_max_points_keeping_the_last_epoch():
    epochs = [int(e) for e in _svg(charts_live.live_curves_svg(_rows(1200), epochs=1200)).get("data-epochs").split(",")]
    assert len(epochs) <= 500 and epochs[-1] == 1200 and epochs == sorted(epochs)
