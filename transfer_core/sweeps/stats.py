"""Means, Student-t intervals and paired differences over seeds; the sweep tables as CSV.

Pure functions over lists of dicts (numpy; scipy only for the t quantile, imported when
needed): no torch, no Optuna, nothing Streamlit. Used by the sweep folder (``summary.csv``,
``paired.csv``), by :mod:`transfer_core.seeds` (siblings over seeds on Compare, the demo and
the report) and by tests that recompute the tables from the run folders.

A trial row is a dict with one key per axis (its label: int, float or str), ``seed``,
``state`` and the metric values (``val_acc``, ``train_s``, ...). Only rows with
``state == "completed"`` and a value (not None, not NaN) count.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["as_number", "mean_ci", "t_quantile", "summarize", "paired", "write_csv", "read_csv", "METRICS"]

METRICS = ("val_acc", "train_s")


def _finite(values: Iterable[Any]) -> list[float]:
    out: list[float] = []
    for v in values:
        if v is None or isinstance(v, bool):
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if not math.isnan(f):
            out.append(f)
    return out


def as_number(v: Any) -> float | None:
    """A table cell as a float: None for empty, non-numeric and NaN."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (scipy, imported lazily)."""
    from scipy.stats import t

    return float(t.ppf(p, df))


def mean_ci(values: Iterable[Any], level: float = 0.95) -> dict[str, Any]:
    """``{n, mean, std, ci_low, ci_high}`` of the values (None and NaN ignored).

    ``std`` has ddof=1; the interval is mean ± t((1+level)/2, n-1)·std/√n. With one value,
    std and the interval are None; with none, the mean too.
    """
    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci_low": None, "ci_high": None}
    arr = np.asarray(xs, dtype=float)
    mean = float(arr.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci_low": None, "ci_high": None}
    std = float(arr.std(ddof=1))
    half = t_quantile((1.0 + level) / 2.0, n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def _same(x: Any, y: Any) -> bool:
    """Labels match: equal values, or equal text (a label read back from CSV may have changed type)."""
    if x == y:
        return True
    return x is not None and y is not None and str(x) == str(y)


def _completed(trials: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [t for t in trials if t.get("state") == "completed"]


def _at(trials: Sequence[Mapping[str, Any]], point: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in trials if all(_same(t.get(a), lab) for a, lab in point.items())]


def _grid(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(axes[a]) for a in names))]


def summarize(trials: Sequence[Mapping[str, Any]], axes: Mapping[str, Sequence[Any]],
              metrics: Sequence[str] = METRICS) -> list[dict[str, Any]]:
    """One row per grid point (the product of the axes' labels, first axis outermost), points
    without a completed trial included (n = 0): the axis labels, ``n`` (completed trials with a
    val_acc) and, per metric m, ``m_mean``, ``m_std``, ``m_ci_low``, ``m_ci_high``."""
    done = _completed(trials)
    rows: list[dict[str, Any]] = []
    for point in _grid(axes):
        here = _at(done, point)
        row: dict[str, Any] = dict(point)
        row["n"] = len(_finite(t.get("val_acc") for t in here))
        for m in metrics:
            s = mean_ci(t.get(m) for t in here)
            for k in ("mean", "std", "ci_low", "ci_high"):
                row[f"{m}_{k}"] = s[k]
        rows.append(row)
    return rows


def _value_by_seed(trials: Sequence[Mapping[str, Any]], metric: str) -> dict[Any, float]:
    """seed -> value of the first completed trial with one (a seed's second trial is ignored)."""
    out: dict[Any, float] = {}
    for t in trials:
        v = _finite([t.get(metric)])
        seed = t.get("seed")
        if v and seed is not None and str(seed) not in {str(s) for s in out}:
            out[seed] = v[0]
    return out


def paired_stats(diffs: Sequence[float], tie_tol: float = 1e-9) -> dict[str, Any]:
    """``{n, mean_diff, ci_low, ci_high, wins, ties, losses}`` of paired differences (a − b)."""
    s = mean_ci(diffs)
    return {
        "n": s["n"], "mean_diff": s["mean"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
        "wins": sum(1 for d in diffs if d > tie_tol),
        "ties": sum(1 for d in diffs if abs(d) <= tie_tol),
        "losses": sum(1 for d in diffs if d < -tie_tol),
    }


def paired(trials: Sequence[Mapping[str, Any]], axes: Mapping[str, Sequence[Any]], metric: str = "val_acc",
           tie_tol: float = 1e-9) -> list[dict[str, Any]]:
    """Paired differences over seeds: for each axis A with two labels or more, each pair (a, b) of
    its labels (a first in display order), at each combination of the other axes' labels.

    Trials at (A=a, others) and (A=b, others) with the same seed, both completed with a value,
    form a pair; unpaired seeds are dropped. Row: ``axis``, ``a``, ``b``, ``at`` ("k=v, k=v" of
    the other axes, "" when there is none), ``n`` (pairs), ``mean_diff`` (mean of a − b),
    ``ci_low``/``ci_high`` (t-interval, None for n < 2), ``wins``/``ties``/``losses`` (a − b
    above ``tie_tol``, within it, below −tie_tol), and the other axes' labels under their names.
    """
    done = _completed(trials)
    rows: list[dict[str, Any]] = []
    for axis, labels in axes.items():
        labels = list(labels)
        if len(labels) < 2:
            continue
        others = {k: v for k, v in axes.items() if k != axis}
        for point in _grid(others):
            here = _at(done, point)
            by_label = [_value_by_seed(_at(here, {axis: lab}), metric) for lab in labels]
            for i, j in itertools.combinations(range(len(labels)), 2):
                va, vb = by_label[i], by_label[j]
                vb_text = {str(s): v for s, v in vb.items()}
                diffs = [v - vb_text[str(s)] for s, v in va.items() if str(s) in vb_text]
                row: dict[str, Any] = dict(point)  # first: the core columns win a name clash
                row.update({
                    "axis": axis, "a": labels[i], "b": labels[j],
                    "at": ", ".join(f"{k}={v}" for k, v in point.items()),
                    **paired_stats(diffs, tie_tol),
                })
                rows.append(row)
    return rows


# --------------------------------------------------------------------------- CSV


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as CSV, atomically (a temp file in the same folder, then ``os.replace``).

    ``columns`` default to every key in first-seen order; a missing key or None is an empty
    cell; floats keep full precision (``repr``).
    """
    path = Path(path)
    if columns is None:
        columns = []
        for r in rows:
            columns.extend(k for k in r if k not in columns)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(columns))
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf)$", re.I)


def _parse(text: str) -> Any:
    if text == "":
        return None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a CSV file as dicts: "" -> None, integral text -> int, other numbers -> float, else text."""
    with open(path, encoding="utf-8", newline="") as fh:
        return [{k: _parse(v or "") for k, v in row.items()} for row in csv.DictReader(fh)]
