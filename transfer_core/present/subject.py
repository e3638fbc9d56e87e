"""What a presentation is about: one run, a comparison of runs, an experiment (sweep), or a distillation.

A subject is written as text, the same in the Present page's URL and on the command line:

    run:<run>              one run (id, unique id prefix, name or folder)
    runs:<run>,<run>,...   a comparison (two runs or more; compare: works too)
    sweep:<sweep>          an experiment: a sweep folder (path, folder name or unique prefix under
                           <runs>/_sweeps), or a built-in experiment's id (labels, freeze, ...: its
                           newest folder); experiment: works too
    distill:<run>          a distillation run (a run: subject whose config says method: distill is one too)

A bare reference is tried as a run, then as a sweep; with commas, as a comparison. Each
subject has a folder where its notes (:mod:`.notes`) and decks are saved: the run's or the
sweep's own folder, and ``<runs>/_present/compare-<hash>`` for a comparison.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..i18n import _
from ..paths import runs_dir
from ..runs import Run, RunStore

__all__ = ["Subject", "parse_subject", "KINDS", "PRESENT_DIR"]

KINDS = ("run", "compare", "sweep", "distill")
PRESENT_DIR = "_present"  # under the runs folder: comparisons' notes and decks
_PREFIX = {"run": "run", "distill": "distill", "runs": "compare", "compare": "compare", "sweep": "sweep",
           "experiment": "sweep", "exp": "sweep"}


@dataclass(frozen=True)
class Subject:
    kind: str  # run | compare | sweep | distill
    refs: tuple[str, ...]  # run ids (run, distill, compare) or the sweep folder's absolute path (sweep)
    runs_root: Path

    @property
    def key(self) -> str:
        """The subject as text (what the URL and the CLI take): ``run:<id>``, ``runs:<id>,<id>``, ..."""
        if self.kind == "compare":
            return "runs:" + ",".join(self.refs)
        if self.kind == "sweep":
            return "sweep:" + Path(self.refs[0]).name
        return f"{self.kind}:{self.refs[0]}"

    @property
    def folder(self) -> Path:
        """Where the subject's notes and decks live."""
        if self.kind == "sweep":
            return Path(self.refs[0])
        if self.kind == "compare":
            digest = hashlib.sha1(",".join(sorted(self.refs)).encode()).hexdigest()[:10]
            return self.runs_root / PRESENT_DIR / f"compare-{digest}"
        return self.runs_root / self.refs[0]

    @property
    def run_ids(self) -> list[str]:
        return [] if self.kind == "sweep" else list(self.refs)

    def runs(self) -> list[Run]:
        store = RunStore(self.runs_root)
        return [store.get(r) for r in self.run_ids]


def _method(run: Run) -> str:
    try:
        return str(run.config_dict().get("method", "transfer"))
    except Exception:  # noqa: BLE001 - a damaged config is still a run
        return "transfer"


def _run_subject(ref: str, root: Path) -> Subject:
    run = RunStore(root).get(ref)
    return Subject("distill" if _method(run) == "distill" else "run", (run.id,), root)


def _sweep_folder(ref: str, root: Path) -> Path:
    from ..sweeps.folder import SWEEPS, sweep_folders

    ref = ref.strip()
    p = Path(ref)
    if (p / "sweep.yaml").is_file():
        return p.resolve()
    base = root / SWEEPS
    if (base / ref / "sweep.yaml").is_file():
        return (base / ref).resolve()
    folders = sweep_folders(root)
    starts = [f for f in folders if f.name.startswith(ref)] if ref else []
    if len(starts) == 1:
        return starts[0].resolve()
    if len(starts) > 1:
        raise ValueError(_("sweep '{ref}' is ambiguous: {n} sweep folders start with it").format(ref=ref, n=len(starts)))
    from ..sweeps import builtin

    if ref in builtin.EXPERIMENTS:  # a built-in experiment: its newest folder (sweep_folders is newest first)
        import yaml

        from ..sweeps.spec import load_sweep

        for f in folders:
            try:
                spec = load_sweep(yaml.safe_load((f / "sweep.yaml").read_text(encoding="utf-8")))
            except Exception:  # noqa: BLE001 - a damaged folder is skipped
                continue
            match = builtin.experiment_of(spec)
            if match and match[0] == ref:
                return f.resolve()
        raise ValueError(_("the experiment '{ref}' has not been run in {root} (start it on the Experiments page)").format(
            ref=ref, root=root))
    raise ValueError(_("no sweep '{ref}' in {folder}").format(ref=ref, folder=base))


def parse_subject(text: str | None, runs_root: str | os.PathLike | None = None) -> Subject:
    """The subject ``text`` names (see the module docstring); ValueError with one line when there is none."""
    root = runs_dir(runs_root)
    raw = (text or "").strip()
    if not raw:
        raise ValueError(_("name a subject: run:<run>, runs:<run>,<run>, sweep:<sweep> or distill:<run>"))
    head, sep, rest = raw.partition(":")
    kind = _PREFIX.get(head.lower()) if sep else None
    if kind is None:  # a bare reference (or a path with a colon in it)
        rest = raw
        if "," in raw:
            kind = "compare"
        else:
            try:
                return _run_subject(raw, root)
            except ValueError as run_err:
                try:
                    return Subject("sweep", (str(_sweep_folder(raw, root)),), root)
                except ValueError:
                    raise run_err from None
    rest = rest.strip()
    if kind in ("run", "distill"):
        subject = _run_subject(rest, root)
        if kind == "distill" and subject.kind != "distill":
            raise ValueError(_("run '{ref}' is not a distillation (its config's method is not distill)").format(ref=rest))
        return subject
    if kind == "compare":
        ids: list[str] = []
        for ref in (r.strip() for r in rest.split(",")):
            if ref:
                rid = RunStore(root).get(ref).id
                if rid not in ids:
                    ids.append(rid)
        if len(ids) < 2:
            raise ValueError(_("a comparison needs two runs or more: runs:<run>,<run>"))
        return Subject("compare", tuple(ids), root)
    return Subject("sweep", (str(_sweep_folder(rest, root)),), root)
