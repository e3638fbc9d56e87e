"""Siblings over seeds: the same experiment run with other seeds, so a comparison shows a spread.

Two completed runs are *siblings* when their configs are equal once the seed, the name and
the settings that only change how fast a run goes (device, loader workers, threads,
checkpoint interval, compile, feature cache) are left out: a sweep's trials over seeds, or
a run repeated by hand with ``--set seed=N``. Several runs with the same seed count once
(the first one given: the store lists newest first), so ``n`` is a number of seeds.

Used by the Compare page, the guided demo's panel and the HTML report: where siblings
exist they show the mean ± the half-width of the 95 % Student-t interval and, between two
kinds, the paired difference over shared seeds with wins/ties/losses; where there is one
seed they say "one seed" and point at the experiment that settles it. No Streamlit here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .compare import flatten_config, kind_label, run_kind
from .i18n import N_, _
from .sweeps.stats import mean_ci, paired_stats

if TYPE_CHECKING:
    from .runs import RunStore, RunSummary

__all__ = [
    "IGNORED_KEYS", "LABELS_EXPERIMENT_TITLE", "LABELS_EXPERIMENT_URL", "SeedIndex", "experiment_link",
    "group_summary", "paired_over_seeds", "paired_text", "seed_index", "seed_key", "sibling_groups",
    "spread_text", "store_seed_index", "ONE_SEED", "ONE_SEED_SENTENCE", "one_seed_sentence", "seed_note",
]

#: Left out when deciding whether two runs are the same experiment.
IGNORED_KEYS = ("seed", "name", "train.device", "train.num_workers", "train.threads", "train.checkpoint_every_s",
                "train.compile", "train.feature_cache")
#: Also left out when looking for the *other kind* of the same task (transfer vs its scratch twin).
_START_KEYS = ("weights", "freeze")
#: ...and the settings the fine-tuning recipe (transfer_core.recipe) resolves from that start: a trained
#: run's config holds them resolved (lr_decay 0.5 from pretrained weights, 1.0 from scratch).
_RECIPE_KEYS = ("train.lr_decay", "train.head_epochs")

# The English constants (marked, translated where shown: ``_(ONE_SEED)``, :func:`one_seed_sentence`).
LABELS_EXPERIMENT_TITLE = N_("How many labels does transfer save?")
LABELS_EXPERIMENT_URL = "/experiments?exp=labels"
ONE_SEED = N_("one seed")
_ONE_SEED_SENTENCE = N_(
    "This is one seed: a single run is one draw, and with few training images another seed can move its accuracy "
    "by several points. The dashboard's Experiments page settles it: “{title}” runs it over {seeds} seeds ({url}).")
ONE_SEED_SENTENCE = _ONE_SEED_SENTENCE.format(title=LABELS_EXPERIMENT_TITLE, seeds=5, url=LABELS_EXPERIMENT_URL)


def one_seed_sentence(title: str | None = None, url: str = LABELS_EXPERIMENT_URL, seeds: int = 5) -> str:
    """:data:`ONE_SEED_SENTENCE` in the current language; another experiment with ``title`` (already
    translated), ``url`` and ``seeds`` (the distillation deck names its own)."""
    return _(_ONE_SEED_SENTENCE).format(title=_(LABELS_EXPERIMENT_TITLE) if title is None else title,
                                        seeds=seeds, url=url)


def experiment_link(seeds: int = 5) -> str:
    """Markdown link to the built-in experiment that measures the spread."""
    text = _("{title} — run it over {seeds} seeds").format(title=_(LABELS_EXPERIMENT_TITLE), seeds=seeds)
    return f"[{text}]({LABELS_EXPERIMENT_URL})"


def _flat(cfg: Mapping[str, Any], drop_start: bool = False) -> dict[str, Any]:
    flat = {k: v for k, v in flatten_config(dict(cfg)).items() if k not in IGNORED_KEYS}
    if drop_start:
        flat = {k: v for k, v in flat.items()
                if not (k.startswith("backbones.") and k.rsplit(".", 1)[-1] in _START_KEYS) and k not in _RECIPE_KEYS}
    return flat


def seed_key(cfg: Mapping[str, Any]) -> str:
    """The config without seed, name and speed-only settings, as canonical text: equal keys = siblings."""
    return json.dumps(_flat(cfg), sort_keys=True, default=str)


def _task_key(cfg: Mapping[str, Any]) -> str:
    """Like :func:`seed_key`, also without where each backbone starts (weights), what it freezes and the
    recipe settings resolved from that (``_RECIPE_KEYS``)."""
    return json.dumps(_flat(cfg, drop_start=True), sort_keys=True, default=str)


def sibling_groups(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """seed key -> run ids sharing it, in the order given (groups of one included)."""
    groups: dict[str, list[str]] = {}
    for rid, cfg in configs.items():
        groups.setdefault(seed_key(cfg), []).append(rid)
    return groups


def _seed_of(rid: str, seed_by_run: Mapping[str, Any] | None) -> Any:
    return rid if seed_by_run is None else seed_by_run.get(rid, rid)


def _by_seed(run_ids: Iterable[str], acc_by_run: Mapping[str, float | None],
             seed_by_run: Mapping[str, Any] | None) -> dict[Any, tuple[str, float]]:
    """seed -> (run, accuracy) of the first run with an accuracy for that seed."""
    out: dict[Any, tuple[str, float]] = {}
    for rid in run_ids:
        acc = acc_by_run.get(rid)
        seed = _seed_of(rid, seed_by_run)
        if acc is not None and acc == acc and seed not in out:
            out[seed] = (rid, float(acc))
    return out


def group_summary(run_ids: Iterable[str], acc_by_run: Mapping[str, float | None],
                  seed_by_run: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:func:`~transfer_core.sweeps.stats.mean_ci` of the runs' accuracies, one per seed, plus
    ``seeds`` (sorted) and ``runs`` (the run counted for each seed, in that order)."""
    per = _by_seed(run_ids, acc_by_run, seed_by_run)
    seeds = sorted(per, key=lambda s: (not isinstance(s, (int, float)), s if isinstance(s, (int, float)) else str(s)))
    return {**mean_ci(per[s][1] for s in seeds), "seeds": seeds, "runs": [per[s][0] for s in seeds]}


def paired_over_seeds(runs_a: Iterable[str], runs_b: Iterable[str], acc_by_run: Mapping[str, float | None],
                      seed_by_run: Mapping[str, Any], tie_tol: float = 1e-9) -> dict[str, Any]:
    """a − b over the seeds both sides have: ``{n, mean_diff, ci_low, ci_high, wins, ties, losses, seeds}``."""
    a = _by_seed(runs_a, acc_by_run, seed_by_run)
    b = _by_seed(runs_b, acc_by_run, seed_by_run)
    shared = [s for s in a if s in b]
    shared.sort(key=lambda s: (not isinstance(s, (int, float)), s if isinstance(s, (int, float)) else str(s)))
    return {**paired_stats([a[s][1] - b[s][1] for s in shared], tie_tol), "seeds": shared}


def _half(summary: Mapping[str, Any], mean_key: str = "mean") -> float | None:
    hi, mean = summary.get("ci_high"), summary.get(mean_key)
    return None if hi is None or mean is None else hi - mean


def spread_text(summary: Mapping[str, Any]) -> str:
    """ "80.2 ± 3.1 % (5 seeds)" (± the half-width of the 95 % interval), "78.0 % (one seed)",
    or "no completed run"."""
    n, mean = int(summary.get("n") or 0), summary.get("mean")
    if not n or mean is None:
        return _("no completed run")
    half = _half(summary)
    if n == 1 or half is None:
        return _("{mean:.1f} % (one seed)").format(mean=mean * 100)
    return _("{mean:.1f} ± {half:.1f} % ({n} seeds)").format(mean=mean * 100, half=half * 100, n=n)


def _score(a: str, p: Mapping[str, Any], n: int) -> str:
    """ "transfer wins 3 of 5, ties 1, loses 1" (ties and losses only when there are some)."""
    wins, ties, losses = p.get("wins", 0), p.get("ties") or 0, p.get("losses") or 0
    if ties and losses:
        text = _("{a} wins {wins} of {n}, ties {ties}, loses {losses}")
    elif ties:
        text = _("{a} wins {wins} of {n}, ties {ties}")
    elif losses:
        text = _("{a} wins {wins} of {n}, loses {losses}")
    else:
        text = _("{a} wins {wins} of {n}")
    return text.format(a=a, wins=wins, n=n, ties=ties, losses=losses)


def paired_text(p: Mapping[str, Any], a: str | None = None, b: str | None = None) -> str:
    """One sentence for a paired difference: "transfer beats scratch by 22.1 ± 8.0 points over
    5 seeds (transfer wins 5 of 5)"; the interval is the 95 % interval of the differences.
    ``a`` and ``b`` name the sides as shown (default: the transfer and scratch kinds, in words)."""
    a = kind_label("transfer") if a is None else a
    b = kind_label("scratch") if b is None else b
    n = int(p.get("n") or 0)
    if n == 0 or p.get("mean_diff") is None:
        return _("{a} and {b} share no seed, so they cannot be paired").format(a=a, b=b)
    d = float(p["mean_diff"]) * 100
    tie, ahead = round(abs(d), 1) == 0, d > 0
    if n == 1:
        if tie:
            return _("{a} and {b} tie on average on one seed they share").format(a=a, b=b)
        text = _("{a} beats {b} by {diff:.1f} points on one seed they share") if ahead \
            else _("{a} trails {b} by {diff:.1f} points on one seed they share")
        return text.format(a=a, b=b, diff=abs(d))
    half = _half(p, "mean_diff")
    half = None if half is None else half * 100
    if tie:
        text = _("{a} and {b} tie on average over {n} seeds ({score})") if half is None \
            else _("{a} and {b} tie on average (± {half:.1f} points) over {n} seeds ({score})")
    elif half is None:
        text = _("{a} beats {b} by {diff:.1f} points over {n} seeds ({score})") if ahead \
            else _("{a} trails {b} by {diff:.1f} points over {n} seeds ({score})")
    else:
        text = _("{a} beats {b} by {diff:.1f} ± {half:.1f} points over {n} seeds ({score})") if ahead \
            else _("{a} trails {b} by {diff:.1f} ± {half:.1f} points over {n} seeds ({score})")
    text = text.format(a=a, b=b, diff=abs(d), half=half, n=n, score=_score(a, p, n))
    lo, hi = p.get("ci_low"), p.get("ci_high")
    if lo is not None and hi is not None and lo <= 0 <= hi and not tie:
        text = _("{sentence}; the interval includes no difference, so this is not settled").format(sentence=text)
    return text


@dataclass
class SeedIndex:
    """Completed runs by seed key: what Compare, the demo panel and the report look siblings up in."""

    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    acc: dict[str, float] = field(default_factory=dict)
    seed: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)

    def siblings(self, run_id: str, cfg: Mapping[str, Any] | None = None) -> list[str]:
        """The completed runs of ``run_id``'s experiment (``cfg`` when it is not indexed), the run first."""
        cfg = self.configs.get(run_id) if cfg is None else cfg
        if cfg is None:
            return []
        group = self.groups.get(seed_key(cfg), [])
        return [run_id, *(r for r in group if r != run_id)] if run_id in group else list(group)

    def summary(self, run_id: str, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """:func:`group_summary` of the run's siblings (the run's own accuracy counts for its seed)."""
        return group_summary(self.siblings(run_id, cfg), self.acc, self.seed)

    def paired(self, run_a: str, run_b: str, cfg_a: Mapping[str, Any] | None = None,
               cfg_b: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """:func:`paired_over_seeds` of the two runs' sibling groups (a − b)."""
        return paired_over_seeds(self.siblings(run_a, cfg_a), self.siblings(run_b, cfg_b), self.acc, self.seed)

    def twins(self, run_id: str, cfg: Mapping[str, Any] | None = None) -> list[str]:
        """One run per other sibling group of the same task that is another kind (the scratch
        twin of a transfer run, or the reverse): same data, backbones and training, other start."""
        cfg = self.configs.get(run_id) if cfg is None else cfg
        if cfg is None:
            return []
        own, task, kind = seed_key(cfg), _task_key(cfg), run_kind(cfg)
        out = []
        for key, members in self.groups.items():
            head = self.configs[members[0]]
            if key != own and _task_key(head) == task and run_kind(head) != kind:
                out.append(members[0])
        return out


def seed_index(summaries: Sequence["RunSummary"], configs: Mapping[str, Mapping[str, Any]]) -> SeedIndex:
    """Index the completed summaries with a final val accuracy (configs by run id; missing = skipped)."""
    idx = SeedIndex()
    for s in summaries:
        cfg = configs.get(s.id)
        if s.state != "completed" or s.val_acc is None or not cfg:
            continue
        idx.configs[s.id] = dict(cfg)
        idx.acc[s.id] = float(s.val_acc)
        idx.seed[s.id] = cfg.get("seed", 0)
    idx.groups = sibling_groups(idx.configs)
    return idx


def store_seed_index(store: "RunStore") -> SeedIndex:
    """:func:`seed_index` of every completed run of a store (a damaged config is skipped)."""
    done = store.finished()
    configs: dict[str, dict[str, Any]] = {}
    for s in done:
        try:
            configs[s.id] = store.get(s.id).config_dict()
        except Exception:  # noqa: BLE001 - a damaged run is no sibling
            continue
    return seed_index(done, configs)


def seed_note(store: "RunStore", run_id: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What a one-run view (the HTML report) says about seeds, as plain text: ``n`` (seeds with
    these settings), ``spread`` (:func:`spread_text`), ``card`` and ``sub`` (a headline number and
    its caption), ``twin`` (the paired gap to the other kind of the same task, "" when there is
    none with two shared seeds) and ``sentence``."""
    index = store_seed_index(store)
    summ = index.summary(run_id, cfg)
    n, spread = summ["n"], spread_text(summ)
    if n < 2 or summ["ci_high"] is None:
        return {"n": n, "spread": spread, "card": _(ONE_SEED), "sub": _("a single run: the spread is not measured"),
                "twin": "", "sentence": one_seed_sentence()}
    twin = ""
    for other in index.twins(run_id, cfg):
        pair = index.paired(run_id, other, cfg)
        if pair["n"] >= 2:
            twin = paired_text(pair, kind_label(run_kind(cfg)), kind_label(run_kind(index.configs[other])))
            break
    card = f"{summ['mean'] * 100:.1f} ± {(summ['ci_high'] - summ['mean']) * 100:.1f} %"
    sentence = _("Over {n} seeds with the same settings it scores {card} (mean ± 95 % interval).").format(n=n, card=card)
    if twin:
        sentence = _("{sentence} Paired by seed, {twin}.").format(sentence=sentence, twin=twin)
    return {"n": n, "spread": spread, "card": card,
            "sub": _("val accuracy over {n} seeds, mean ± 95 % interval").format(n=n), "twin": twin,
            "sentence": sentence}
