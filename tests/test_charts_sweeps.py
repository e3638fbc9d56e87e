"""The Experiments page's figures from fabricated summary and trial rows (no training, no Streamlit)."""

from __future__ import annotations

from dashboard.charts_sweeps import sweep_figure


def srow(n, mean, half=None, train_s=5.0, **point):
    lo, hi = (None, None) if half is None else (mean - half, mean + half)
    th = None if half is None else 1.0
    return {**point, "n": n, "val_acc_mean": mean, "val_acc_ci_low": lo, "val_acc_ci_high": hi,
            "train_s_mean": train_s, "train_s_ci_low": None if th is None else train_s - th,
            "train_s_ci_high": None if th is None else train_s + th}


def trow(seed, acc, state="completed", train_s=5.0, **point):
    return {**point, "seed": seed, "state": state, "val_acc": acc, "train_s": train_s}


def seed_dots(fig) -> int:
    return sum(len(t.x) for t in fig.data if t.meta == "seed")


def test_labels_figure_log_axis_band_per_variant_and_a_dot_per_seed():
    axes = {"data.train_per_class": [1, 10, 50], "variant": ["scratch", "transfer"]}
    summary = [srow(2, 0.5, 0.6, **{"data.train_per_class": b, "variant": v}) for b in (1, 10) for v in axes["variant"]]
    trials = [trow(s, 0.5, **{"data.train_per_class": b, "variant": v}) for b in (1, 10) for v in axes["variant"]
              for s in (0, 1)] + [trow(0, None, state="running", **{"data.train_per_class": 50, "variant": "scratch"})]
    fig = sweep_figure("labels", summary, trials, axes)
    assert fig.layout.xaxis.type == "log"
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["scratch", "transfer"]
    assert list(lines[0].y) == [0.5, 0.5, None]  # no finished trial at 50 yet
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2 and max(bands[0].y) <= 1.0 and min(bands[0].y) >= 0.0  # clipped to 0..100 %
    assert seed_dots(fig) == 8  # the running trial is not a dot


def test_freeze_alpha_parts_and_generic_figures():
    fz = {"backbones.0.freeze": [0, 3, "all"]}
    fig = sweep_figure("freeze", [srow(3, 0.7, 0.05, train_s=t, **{"backbones.0.freeze": f})
                                  for f, t in ((0, 6.0), (3, 5.0), ("all", 0.1))],
                       [trow(0, 0.7, **{"backbones.0.freeze": "all"})], fz)
    assert list(fig.layout.xaxis.ticktext) == ["0", "3", "all"] and list(fig.layout.xaxis.tickvals) == [0, 3, 4]
    assert any(t.name == "training time" for t in fig.data)

    al = {"alpha1": ["0", "0.5", "1", "learned"]}
    fig = sweep_figure("alpha", [srow(3, 0.6 + i / 10, 0.02, alpha1=a) for i, a in enumerate(al["alpha1"])],
                       [trow(s, 0.8, alpha1="learned") for s in range(3)], al)
    learned = [t for t in fig.data if t.name == "learned α"]
    assert len(learned) == 1 and [round(y, 6) for y in learned[0].y] == [0.9, 0.9]  # a horizontal line at its mean
    assert seed_dots(fig) == 3

    parts = {"model": ["a alone", "b alone", "concat"]}
    fig = sweep_figure("parts", [srow(3, 0.7, 0.03, model=m) for m in parts["model"]], [], parts)
    bar = [t for t in fig.data if t.type == "bar"][0]
    assert list(bar.x) == parts["model"] and [round(e, 6) for e in bar.error_y.array] == [0.03, 0.03, 0.03]

    generic = {"train.lr": [0.0001, 0.001, 0.01], "variant": ["x", "y"]}
    fig = sweep_figure(None, [srow(1, 0.5, **{"train.lr": lr, "variant": v}) for lr in generic["train.lr"]
                              for v in ("x", "y")], [], generic)
    assert fig.layout.xaxis.type == "log" and {t.name for t in fig.data if t.mode == "lines+markers"} == {
        "variant=x", "variant=y"}
    fig = sweep_figure(None, [srow(2, 0.5, 0.1, opt=o) for o in ("adam", "sgd")], [], {"opt": ["adam", "sgd"]})
    assert [t.type for t in fig.data][0] == "bar"
