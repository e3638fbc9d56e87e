"""transfer_core.seeds: siblings over seeds, their spread, paired differences and the sentences."""

from __future__ import annotations

import math

import pytest

from seed_runs import fake_run
from transfer_core.runs import RunStore
from transfer_core.seeds import (
    LABELS_EXPERIMENT_URL,
    experiment_link,
    group_summary,
    paired_over_seeds,
    paired_text,
    seed_key,
    sibling_groups,
    spread_text,
    store_seed_index,
)

T_975_DF2 = 4.302652729911275


def _cfg(seed=0, name="x", weights="none", freeze=0, per_class=10, **train):
    return {"seed": seed, "name": name, "method": "transfer",
            "data": {"dataset": "digits", "classes": [5, 6], "train_per_class": per_class},
            "backbones": [{"name": "resnet18", "weights": weights, "freeze": freeze}],
            "train": {"epochs": 2, "lr": 0.001, "device": "cpu", **train}}


def test_seed_key_ignores_seed_name_and_speed_settings_only():
    base = seed_key(_cfg())
    assert seed_key(_cfg(seed=3, name="other")) == base
    assert seed_key(_cfg(device="cuda", num_workers=4, threads=2, compile=True)) == base
    assert seed_key(_cfg(per_class=20)) != base
    assert seed_key(_cfg(lr=0.01)) != base
    assert seed_key(_cfg(weights="run:src", freeze=3)) != base


def test_sibling_groups_keep_order_and_singletons():
    configs = {"a": _cfg(0), "b": _cfg(1, weights="run:s"), "c": _cfg(1), "d": _cfg(2, per_class=5)}
    groups = sibling_groups(configs)
    assert list(groups.values()) == [["a", "c"], ["b"], ["d"]]


def test_group_summary_counts_each_seed_once():
    acc = {"a": 0.8, "b": 0.9, "c": 1.0, "d": 0.1, "e": None}
    seeds = {"a": 0, "b": 1, "c": 2, "d": 0, "e": 3}  # d repeats seed 0 (a counts); e has no accuracy
    s = group_summary(["a", "b", "c", "d", "e"], acc, seeds)
    assert s["n"] == 3 and s["seeds"] == [0, 1, 2] and s["runs"] == ["a", "b", "c"]
    assert s["mean"] == pytest.approx(0.9) and s["std"] == pytest.approx(0.1)
    assert s["ci_high"] - s["mean"] == pytest.approx(T_975_DF2 * 0.1 / math.sqrt(3))


def test_paired_over_seeds_pairs_by_seed_and_drops_the_rest():
    acc = {"t0": 0.9, "t1": 0.5, "t2": 0.4, "t3": 0.99, "s0": 0.6, "s1": 0.5, "s2": 0.6, "s4": 0.1}
    seed = {r: int(r[1]) for r in acc}
    p = paired_over_seeds(["t0", "t1", "t2", "t3"], ["s0", "s1", "s2", "s4"], acc, seed)
    assert p["seeds"] == [0, 1, 2] and p["n"] == 3
    assert (p["wins"], p["ties"], p["losses"]) == (1, 1, 1)
    assert p["mean_diff"] == pytest.approx(0.1 / 3)


def test_spread_text_many_one_and_no_seed():
    assert spread_text(group_summary(["a", "b", "c"], {"a": 0.8, "b": 0.9, "c": 1.0}, {"a": 0, "b": 1, "c": 2})) \
        == f"90.0 ± {T_975_DF2 * 10 / math.sqrt(3):.1f} % (3 seeds)"
    assert spread_text(group_summary(["a"], {"a": 0.78}, {"a": 0})) == "78.0 % (one seed)"
    assert spread_text(group_summary([], {}, {})) == "no completed run"


def test_paired_text_states_the_gap_interval_and_score():
    p = {"n": 5, "mean_diff": 0.221, "ci_low": 0.141, "ci_high": 0.301, "wins": 5, "ties": 0, "losses": 0}
    assert paired_text(p) == "transfer beats scratch by 22.1 ± 8.0 points over 5 seeds (transfer wins 5 of 5)"
    p = {"n": 4, "mean_diff": -0.02, "ci_low": -0.1, "ci_high": 0.06, "wins": 1, "ties": 1, "losses": 2}
    text = paired_text(p, "A", "B")
    assert text.startswith("A trails B by 2.0 ± 8.0 points over 4 seeds (A wins 1 of 4, ties 1, loses 2)")
    assert "not settled" in text
    assert "one seed" in paired_text({"n": 1, "mean_diff": 0.1, "ci_low": None, "ci_high": None, "wins": 1})
    assert "share no seed" in paired_text({"n": 0, "mean_diff": None})


def test_experiment_link_points_at_the_labels_experiment():
    assert experiment_link() == (f"[How many labels does transfer save? — run it over 5 seeds]"
                                 f"({LABELS_EXPERIMENT_URL})")
    assert LABELS_EXPERIMENT_URL == "/experiments?exp=labels"


def test_store_index_finds_completed_siblings_and_twins(runs_root):
    t = [fake_run(runs_root, _cfg(s, "sweep-trial", weights="run:src", freeze=3), acc) for s, acc in
         enumerate([0.8, 0.9, 1.0])]
    sc = [fake_run(runs_root, _cfg(s, "sweep-trial"), acc) for s, acc in enumerate([0.6, 0.9, 0.7])]
    failed = fake_run(runs_root, _cfg(3, weights="run:src", freeze=3), 0.2, state="failed")
    alone = fake_run(runs_root, _cfg(0, per_class=5), 0.5)
    idx = store_seed_index(RunStore(runs_root))
    assert failed not in idx.acc
    assert idx.siblings(t[1])[0] == t[1] and set(idx.siblings(t[1])) == set(t)
    s = idx.summary(t[0])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.9)
    assert idx.summary(alone)["n"] == 1 and spread_text(idx.summary(alone)).endswith("(one seed)")
    p = idx.paired(t[0], sc[0])
    assert p["n"] == 3 and (p["wins"], p["ties"], p["losses"]) == (2, 1, 0)
    assert p["mean_diff"] == pytest.approx(0.5 / 3)
    assert idx.twins(t[0]) and idx.twins(t[0])[0] in sc
    assert idx.twins(alone) == []
    # a run not in the index (not completed) still finds its completed siblings by config
    assert set(idx.siblings(failed, RunStore(runs_root).get(failed).config_dict())) == set(t)


def _demo_like(root, accs_t, accs_s):
    from seed_runs import demo_cfg

    t = [fake_run(root, demo_cfg(s, "transfer"), a) for s, a in enumerate(accs_t)]
    s_ = [fake_run(root, demo_cfg(s, "scratch"), a) for s, a in enumerate(accs_s)]
    return t, s_


def test_seed_note_over_seeds_with_the_twin(runs_root):
    from transfer_core.seeds import seed_note

    t, _ = _demo_like(runs_root, [0.8, 0.9, 0.85], [0.6, 0.7, 0.64])
    store = RunStore(runs_root)
    note = seed_note(store, t[0], store.get(t[0]).config_dict())
    assert note["n"] == 3 and note["card"] == "85.0 ± 12.4 %"  # half-width 4.3027 * 0.05 / sqrt(3)
    assert note["twin"] == "transfer beats scratch by 20.3 ± 1.4 points over 3 seeds (transfer wins 3 of 3)"
    assert note["spread"] == "85.0 ± 12.4 % (3 seeds)"
    assert note["sentence"] == ("Over 3 seeds with the same settings it scores 85.0 ± 12.4 % "
                                "(mean ± 95 % interval). Paired by seed, " + note["twin"] + ".")


def test_seed_note_one_seed_names_the_experiment(runs_root):
    from transfer_core.seeds import ONE_SEED_SENTENCE, seed_note

    t, _ = _demo_like(runs_root, [0.8], [0.6])
    store = RunStore(runs_root)
    note = seed_note(store, t[0], store.get(t[0]).config_dict())
    assert note["n"] == 1 and note["card"] == "one seed" and note["twin"] == ""
    assert note["sentence"] == ONE_SEED_SENTENCE
    assert "one seed" in ONE_SEED_SENTENCE and "How many labels does transfer save?" in ONE_SEED_SENTENCE
    assert "/experiments?exp=labels" in ONE_SEED_SENTENCE


def test_html_report_says_one_seed_or_the_spread(runs_root):
    from transfer_core.report import html_report

    t, _ = _demo_like(runs_root, [0.8], [0.6])
    html = html_report(RunStore(runs_root).get(t[0]))
    assert ">Over seeds<" in html and ">one seed<" in html
    assert "This is one seed: a single run is one draw" in html and "/experiments?exp=labels" in html

    more, _ = _demo_like(runs_root, [0.9, 0.85], [0.7, 0.64])  # seeds 0 and 1 again: the first of each counts
    html = html_report(RunStore(runs_root).get(t[0]))
    assert "Over 2 seeds with the same settings it scores" in html and "transfer wins" in html
    assert "This is one seed" not in html


def test_twins_are_found_in_configs_with_the_recipe_resolved(runs_root):
    """A trained run's config.yaml holds the recipe resolved (transfer_core.recipe): lr_decay 0.5 for a
    transfer from a source run, 1.0 from scratch. The scratch twin is the same task all the same."""
    from seed_runs import demo_cfg
    from transfer_core.config import from_dict, to_dict
    from transfer_core.recipe import resolve
    from transfer_core.seeds import seed_note

    def as_trained(cfg):
        return to_dict(resolve(from_dict(cfg)))

    t = [fake_run(runs_root, as_trained(demo_cfg(s, "transfer", source="run:src")), a) for s, a in enumerate([0.8, 0.9])]
    sc = [fake_run(runs_root, as_trained(demo_cfg(s, "scratch")), a) for s, a in enumerate([0.6, 0.75])]
    store = RunStore(runs_root)
    cfg_t = store.get(t[0]).config_dict()
    assert cfg_t["train"]["lr_decay"] == 0.5 and store.get(sc[0]).config_dict()["train"]["lr_decay"] == 1.0
    idx = store_seed_index(store)
    assert len(idx.twins(t[0])) == 1 and idx.twins(t[0])[0] in sc
    assert len(idx.twins(sc[0])) == 1 and idx.twins(sc[0])[0] in t
    note = seed_note(store, t[0], cfg_t)
    assert note["twin"] == ("transfer beats scratch by 17.5 ± 31.8 points over 2 seeds (transfer wins 2 of 2); "
                            "the interval includes no difference, so this is not settled")
    assert note["sentence"].endswith(f"Paired by seed, {note['twin']}.")
