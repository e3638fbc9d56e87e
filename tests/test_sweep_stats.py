"""transfer_core.sweeps.stats: means and t-intervals, grid summaries, paired differences, CSV files."""

from __future__ import annotations

import math

import pytest

from transfer_core.sweeps import stats
from transfer_core.sweeps.stats import mean_ci, paired, read_csv, summarize, write_csv

T_975_DF2 = 4.302652729911275  # Student t, 97.5 % quantile, 2 degrees of freedom (tables: 4.303)
T_975_DF1 = 12.706204736174707


def test_mean_ci_of_three_values_by_hand():
    s = mean_ci([0.8, 0.9, 1.0])
    assert s["n"] == 3
    assert s["mean"] == pytest.approx(0.9)
    assert s["std"] == pytest.approx(0.1)  # ddof=1: sqrt((0.01 + 0 + 0.01) / 2)
    half = T_975_DF2 * 0.1 / math.sqrt(3)
    assert s["ci_low"] == pytest.approx(0.9 - half) and s["ci_high"] == pytest.approx(0.9 + half)


def test_mean_ci_other_level_uses_its_quantile():
    s = mean_ci([1.0, 3.0], level=0.9)  # t(0.95, 1) = 6.3138
    assert s["std"] == pytest.approx(math.sqrt(2))
    assert s["ci_high"] - s["mean"] == pytest.approx(6.313751514675)  # t * sqrt(2) / sqrt(2)


def test_mean_ci_one_value_has_no_spread():
    assert mean_ci([0.7]) == {"n": 1, "mean": 0.7, "std": None, "ci_low": None, "ci_high": None}


def test_mean_ci_empty_has_no_mean():
    assert mean_ci([]) == {"n": 0, "mean": None, "std": None, "ci_low": None, "ci_high": None}
    assert mean_ci([None, float("nan")])["mean"] is None


def test_mean_ci_ignores_none_and_nan():
    assert mean_ci([0.8, None, float("nan"), 0.9, 1.0]) == mean_ci([0.8, 0.9, 1.0])


def _t(variant, per_class, seed, acc, state="completed", train_s=1.0):
    return {"variant": variant, "data.train_per_class": per_class, "seed": seed, "state": state,
            "val_acc": acc, "train_s": train_s}


AXES = {"data.train_per_class": [1, 5], "variant": ["scratch", "transfer"]}


def test_summarize_rows_follow_grid_order_with_empty_points():
    trials = [_t("transfer", 5, 0, 0.9), _t("transfer", 5, 1, 0.7), _t("scratch", 1, 0, 0.5)]
    rows = summarize(trials, AXES)
    assert [(r["data.train_per_class"], r["variant"]) for r in rows] == [
        (1, "scratch"), (1, "transfer"), (5, "scratch"), (5, "transfer")]  # first axis outermost
    assert [r["n"] for r in rows] == [1, 0, 0, 2]
    empty = rows[1]
    assert all(empty[k] is None for k in ("val_acc_mean", "val_acc_std", "val_acc_ci_low", "val_acc_ci_high"))
    last = rows[3]
    assert last["val_acc_mean"] == pytest.approx(0.8) and last["val_acc_std"] == pytest.approx(math.sqrt(0.02))
    assert last["val_acc_ci_high"] - 0.8 == pytest.approx(T_975_DF1 * math.sqrt(0.02) / math.sqrt(2))
    assert last["train_s_mean"] == pytest.approx(1.0) and last["train_s_std"] == pytest.approx(0.0)
    assert rows[0]["val_acc_mean"] == 0.5 and rows[0]["val_acc_std"] is None


def test_summarize_counts_only_completed_trials_with_a_value():
    trials = [_t("scratch", 1, 0, 0.5), _t("scratch", 1, 1, 0.9, state="failed"),
              _t("scratch", 1, 2, None), _t("scratch", 1, 3, 0.7, state="running")]
    row = summarize(trials, {"variant": ["scratch"], "data.train_per_class": [1]})[0]
    assert row["n"] == 1 and row["val_acc_mean"] == 0.5
    assert list(row)[:3] == ["variant", "data.train_per_class", "n"]


def test_summarize_matches_labels_read_back_as_text_or_numbers():
    trials = [{"lr": "0.001", "seed": 0, "state": "completed", "val_acc": 0.6}]
    assert summarize(trials, {"lr": [0.001]}, metrics=("val_acc",))[0]["n"] == 1


def test_paired_wins_ties_losses_and_unpaired_seeds_dropped():
    trials = [
        _t("transfer", 1, 0, 0.9), _t("scratch", 1, 0, 0.6),   # +0.3 win
        _t("transfer", 1, 1, 0.5), _t("scratch", 1, 1, 0.5),   # tie
        _t("transfer", 1, 2, 0.4), _t("scratch", 1, 2, 0.6),   # -0.2 loss
        _t("transfer", 1, 3, 0.99),                            # no scratch at seed 3: dropped
        _t("scratch", 1, 4, 0.1), _t("transfer", 1, 4, 0.2, state="failed"),  # failed: dropped
    ]
    rows = paired(trials, {"variant": ["transfer", "scratch"], "data.train_per_class": [1]})
    assert len(rows) == 1  # the per-class axis has one label: no pair of its own
    r = rows[0]
    assert (r["axis"], r["a"], r["b"], r["at"]) == ("variant", "transfer", "scratch", "data.train_per_class=1")
    assert r["data.train_per_class"] == 1  # the other axis as its own column, for filtering
    assert (r["n"], r["wins"], r["ties"], r["losses"]) == (3, 1, 1, 1)
    assert r["mean_diff"] == pytest.approx(0.1 / 3)
    sd = math.sqrt(((0.3 - 0.1 / 3) ** 2 + (0.1 / 3) ** 2 + (-0.2 - 0.1 / 3) ** 2) / 2)
    assert r["ci_high"] - r["mean_diff"] == pytest.approx(T_975_DF2 * sd / math.sqrt(3))


def test_paired_every_axis_every_label_pair_at_every_other_point():
    trials = [_t(v, k, s, 0.1 * k + (0.05 if v == "transfer" else 0) + 0.01 * s)
              for v in ("scratch", "transfer") for k in (1, 5) for s in (0, 1)]
    rows = paired(trials, AXES)
    keys = [(r["axis"], r["a"], r["b"], r["at"]) for r in rows]
    assert keys == [
        ("data.train_per_class", 1, 5, "variant=scratch"),
        ("data.train_per_class", 1, 5, "variant=transfer"),
        ("variant", "scratch", "transfer", "data.train_per_class=1"),
        ("variant", "scratch", "transfer", "data.train_per_class=5"),
    ]
    for r in rows[2:]:
        assert r["n"] == 2 and r["losses"] == 2 and r["mean_diff"] == pytest.approx(-0.05)
        assert r["ci_low"] == pytest.approx(-0.05) and r["ci_high"] == pytest.approx(-0.05)  # same gap each seed
    assert rows[0]["mean_diff"] == pytest.approx(-0.4) and rows[0]["variant"] == "scratch"


def test_paired_one_axis_has_empty_at_and_single_pair_has_no_interval():
    trials = [_t("a", 1, 0, 0.7), _t("b", 1, 0, 0.6)]
    r = paired(trials, {"variant": ["a", "b"]})[0]
    assert r["at"] == "" and r["n"] == 1 and r["mean_diff"] == pytest.approx(0.1)
    assert r["ci_low"] is None and r["ci_high"] is None and r["wins"] == 1


def test_paired_with_no_pairs_reports_zero():
    r = paired([_t("a", 1, 0, 0.7), _t("b", 1, 1, 0.6)], {"variant": ["a", "b"]})[0]
    assert (r["n"], r["mean_diff"], r["wins"], r["ties"], r["losses"]) == (0, None, 0, 0, 0)


def test_csv_round_trip_keeps_types_precision_and_none(tmp_path):
    rows = [{"variant": "transfer", "k": 10, "x": 0.1 + 0.2, "tiny": 1e-12, "none": None},
            {"variant": "5", "k": -3, "x": 2.0, "tiny": float("inf"), "none": None}]
    path = write_csv(tmp_path / "out" / "t.csv", rows, ["variant", "k", "x", "tiny", "none"])
    assert path.read_text(encoding="utf-8").splitlines()[1] == "transfer,10,0.30000000000000004,1e-12,"
    back = read_csv(path)
    assert back[0] == {"variant": "transfer", "k": 10, "x": 0.30000000000000004, "tiny": 1e-12, "none": None}
    assert back[1]["variant"] == 5 and back[1]["x"] == 2.0 and isinstance(back[1]["x"], float)
    assert back[1]["tiny"] == float("inf")
    assert [p.name for p in path.parent.iterdir()] == ["t.csv"]  # no temp file left behind


def test_write_csv_default_columns_and_atomic_replace(tmp_path, monkeypatch):
    path = tmp_path / "out" / "s.csv"
    write_csv(path, [{"a": 1}, {"b": "x", "a": 2}])
    assert read_csv(path) == [{"a": 1, "b": None}, {"a": 2, "b": "x"}]

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(stats.os, "replace", boom)
    with pytest.raises(OSError):
        write_csv(path, [{"a": 3}])
    assert read_csv(path)[0]["a"] == 1  # the old file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.csv"]


def test_summary_and_paired_survive_a_csv_round_trip(tmp_path):
    trials = [_t(v, k, s, 0.1 * k + 0.01 * s + (0.1 if v == "transfer" else 0.0))
              for v in ("scratch", "transfer") for k in (1, 5) for s in (0, 1, 2)]
    write_csv(tmp_path / "trials.csv", trials)
    back = read_csv(tmp_path / "trials.csv")
    assert summarize(back, AXES) == summarize(trials, AXES)
    assert paired(back, AXES) == paired(trials, AXES)
