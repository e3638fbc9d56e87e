"""Headline sentences from fabricated summary and paired rows (no training)."""

from __future__ import annotations

from transfer_core.sweeps.builtin import ALPHA_AXIS, BUDGET_AXIS, FREEZE_AXIS, PARTS, PARTS_AXIS, VARIANT_AXIS
from transfer_core.sweeps.headlines import NOTHING_YET, headline, value_text


def row(n: int, mean: float | None, half: float | None = None, train_s: float = 5.0, **point) -> dict:
    """A summary.csv row: the point's labels, n and the val_acc / train_s columns."""
    lo = hi = None
    if half is not None and mean is not None:
        lo, hi = mean - half, mean + half
    return {**point, "n": n, "val_acc_mean": mean, "val_acc_std": None, "val_acc_ci_low": lo, "val_acc_ci_high": hi,
            "train_s_mean": train_s, "train_s_std": None, "train_s_ci_low": None, "train_s_ci_high": None}


def pair(axis: str, a, b, n: int, wins: int, ties: int, losses: int, **at) -> dict:
    return {"axis": axis, "a": a, "b": b, "at": ", ".join(f"{k}={v}" for k, v in at.items()), "n": n,
            "mean_diff": 0.1, "ci_low": 0.0, "ci_high": 0.2, "wins": wins, "ties": ties, "losses": losses, **at}


LABEL_AXES = {BUDGET_AXIS: [1, 2, 5, 10, 20, 50], VARIANT_AXIS: ["scratch", "transfer", "probe"]}


def test_value_text_rounds_the_half_width_and_says_one_seed():
    assert value_text(row(5, 0.8012, 0.031)) == "80 ± 3 %"
    assert value_text(row(5, 0.8012, 0.004)) == "80.1 ± 0.4 %"
    assert value_text(row(1, 0.57)) == "57 %"
    assert value_text(row(1, 0.57), alone=True) == "57 % (one seed)"


def test_labels_headline_at_ten_labels_with_paired_wins():
    summary = [row(5, 0.80, 0.03, **{BUDGET_AXIS: 10, VARIANT_AXIS: "transfer"}),
               row(5, 0.57, 0.04, **{BUDGET_AXIS: 10, VARIANT_AXIS: "scratch"}),
               row(5, 0.95, 0.01, **{BUDGET_AXIS: 50, VARIANT_AXIS: "transfer"}),
               row(5, 0.93, 0.01, **{BUDGET_AXIS: 50, VARIANT_AXIS: "scratch"})]
    # paired rows order labels as the axis does: a = scratch, b = transfer; transfer's wins are the losses
    paired = [pair(VARIANT_AXIS, "scratch", "transfer", 5, 0, 0, 5, **{BUDGET_AXIS: 10}),
              pair(VARIANT_AXIS, "scratch", "transfer", 5, 2, 0, 3, **{BUDGET_AXIS: 50})]
    assert headline("labels", summary, paired, LABEL_AXES) == (
        "With 10 labels per class, transfer reaches 80 ± 3 % and scratch 57 ± 4 % (5 seeds; transfer wins 5 of 5).")


def test_labels_headline_with_the_probe_and_nearest_budget():
    summary = [row(3, 0.70, 0.05, **{BUDGET_AXIS: 5, VARIANT_AXIS: v}) for v in ("transfer",)] + [
        row(3, 0.50, 0.10, **{BUDGET_AXIS: 5, VARIANT_AXIS: "scratch"}),
        row(3, 0.65, 0.02, **{BUDGET_AXIS: 5, VARIANT_AXIS: "probe"}),
        row(0, None, **{BUDGET_AXIS: 10, VARIANT_AXIS: "transfer"})]
    paired = [pair(VARIANT_AXIS, "scratch", "transfer", 3, 1, 0, 2, **{BUDGET_AXIS: 5})]
    text = headline("labels", summary, paired, LABEL_AXES, partial=True)
    assert text == ("So far: With 5 labels per class, transfer reaches 70 ± 5 %, the linear probe 65 ± 2 % "
                    "and scratch 50 ± 10 % (3 seeds; transfer wins 2 of 3).")


def test_one_seed_is_said_plainly_never_a_bare_number():
    summary = [row(1, 0.76, **{BUDGET_AXIS: 10, VARIANT_AXIS: "transfer"}),
               row(1, 0.50, **{BUDGET_AXIS: 10, VARIANT_AXIS: "scratch"})]
    paired = [pair(VARIANT_AXIS, "scratch", "transfer", 1, 0, 0, 1, **{BUDGET_AXIS: 10})]
    text = headline("labels", summary, paired, LABEL_AXES)
    assert text == "With 10 labels per class, transfer reaches 76 % and scratch 50 % (one seed; transfer wins 1 of 1)."
    mixed = headline("labels", [summary[0], row(4, 0.5, 0.05, **{BUDGET_AXIS: 10, VARIANT_AXIS: "scratch"})], [], LABEL_AXES)
    assert "76 % (one seed)" in mixed and "50 ± 5 %" in mixed and "(1–4 seeds)" in mixed


def test_nothing_finished_yet():
    empty = [row(0, None, **{BUDGET_AXIS: b, VARIANT_AXIS: v}) for b in (1, 10) for v in ("scratch", "transfer")]
    assert headline("labels", empty, [], LABEL_AXES) == NOTHING_YET
    assert headline(None, [], [], {"x": [1, 2]}) == NOTHING_YET
    assert headline("parts", [], [], {PARTS_AXIS: list(PARTS)}) == NOTHING_YET


def test_freeze_headline_names_best_depth_and_times():
    axes = {FREEZE_AXIS: [0, 1, 2, 3, 4, "all"]}
    summary = [row(5, 0.77, 0.02, train_s=6.0, **{FREEZE_AXIS: 0}), row(5, 0.78, 0.03, train_s=5.1, **{FREEZE_AXIS: 3}),
               row(5, 0.70, 0.02, train_s=0.01, **{FREEZE_AXIS: "all"})]
    assert headline("freeze", summary, [], axes) == (
        "Freezing the first 3 groups is best: 78 ± 3 % in 5.1 s of training per run; training every group: "
        "77 ± 2 % in 6.0 s; freezing all (linear probe): 70 ± 2 % in under 0.1 s (5 seeds).")


def test_alpha_headline_best_fixed_against_learned():
    axes = {ALPHA_AXIS: ["0", "0.5", "1", "learned"]}
    summary = [row(5, 0.60, 0.04, **{ALPHA_AXIS: "0"}), row(5, 0.82, 0.02, **{ALPHA_AXIS: "0.5"}),
               row(5, 0.75, 0.03, **{ALPHA_AXIS: "1"}), row(5, 0.81, 0.03, **{ALPHA_AXIS: "learned"})]
    paired = [pair(ALPHA_AXIS, "0.5", "learned", 5, 3, 0, 2)]
    assert headline("alpha", summary, paired, axes) == (
        "The best fixed α₁ = 0.5 reaches 82 ± 2 %; learned α reaches 81 ± 3 % "
        "(5 seeds; learned α wins 2 of 5 against α₁ = 0.5).")


def test_parts_headline_ranks_and_pairs_fusion_with_the_best_single_body():
    axes = {PARTS_AXIS: list(PARTS)}
    means = dict(zip(PARTS, (0.80, 0.70, 0.84, 0.85)))
    summary = [row(3, m, 0.02, **{PARTS_AXIS: p}) for p, m in means.items()]
    paired = [pair(PARTS_AXIS, PARTS[0], PARTS[3], 3, 0, 0, 3)]
    assert headline("parts", summary, paired, axes) == (
        "Best: α-sum (learned α) at 85 ± 2 %, then concat 84 ± 2 %, resnet18 alone 80 ± 2 % and "
        "shufflenet_v2_x1_0 alone 70 ± 2 % (3 seeds; α-sum (learned α) wins 3 of 3 against resnet18 alone).")


def test_generic_headline_best_and_worst_point():
    axes = {"train.lr": [0.001, 0.01]}
    summary = [row(3, 0.7, 0.05, **{"train.lr": 0.001}), row(3, 0.4, 0.1, **{"train.lr": 0.01})]
    paired = [pair("train.lr", 0.001, 0.01, 3, 3, 0, 0)]
    assert headline(None, summary, paired, axes) == (
        "Best: train.lr = 0.001 at 70 ± 5 %; worst: train.lr = 0.01 at 40 ± 10 % (3 seeds; the best wins 3 of 3 "
        "against the worst).")
    assert headline(None, summary[:1], [], axes) == "train.lr = 0.001: 70 ± 5 % (3 seeds)."
