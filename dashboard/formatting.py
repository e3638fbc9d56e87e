"""Every short text the dashboard shows for a number or a run: durations, sizes, counts, run labels.

Pure functions (no Streamlit): plain values in, strings out, so the pages, the sidebar
and the tests format the same thing the same way.
"""

from __future__ import annotations

from typing import Any, Sequence

from dashboard.labels import state_label
from transfer_core.i18n import _, ngettext

__all__ = [
    "count",
    "duration",
    "eta_suffix",
    "run_time",
    "human_count",
    "human_bytes",
    "device_label",
    "thumb_caption",
    "run_option",
    "run_label",
    "run_title",
    "weights_run_label",
]


def count(n: int, word: str, plural: str | None = None) -> str:
    """``count(1, "thread")`` -> "1 thread", ``count(2, "thread")`` -> "2 threads".

    English only (the word is a variable): translated text uses ``ngettext`` instead."""
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def duration(seconds: float | None, missing: str = "—") -> str:
    """Seconds as m:ss (75 -> "1:15"); ``missing`` when unknown."""
    if seconds is None:
        return missing
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def eta_suffix(seconds: float | None) -> str:
    """" · ETA m:ss", or "" when there is no estimate yet."""
    return "" if seconds is None else " · " + _("ETA {time}").format(time=duration(seconds))


def run_time(status: dict[str, Any]) -> str:
    """Wall-clock training time of a run from its status (started/ended), "—" while unknown."""
    took = (status.get("ended") or 0) - (status.get("started") or 0)
    return duration(took) if took > 0 else "—"


def human_count(n: int | float) -> str:
    """11176512 -> '11.2M', 9536 -> '9.5k'."""
    n = float(n)
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KB': sizes people read at a glance."""
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def device_label(kind: str, gpu_name: str = "", gpus: int = 0, threads: int = 1) -> str:
    """The sidebar's device badge: "GPU: <name> (x2)", "Apple MPS" or "CPU · 4 threads"."""
    if kind == "cuda":
        return _("GPU: {name}").format(name=gpu_name) + (f" (x{gpus})" if gpus > 1 else "")
    if kind == "mps":
        return "Apple MPS"
    return ngettext("CPU · {n} thread", "CPU · {n} threads", threads).format(n=threads)


def thumb_caption(probs: Sequence[tuple[str, float]]) -> str:
    """Top-2 predicted probabilities, e.g. "7: 91% · 1: 6%" (no line break inside a pair)."""
    return " · ".join(f"{c}:\u00a0{p:.0%}" for c, p in list(probs)[:2])


def _acc(s: Any, fmt: str) -> str:
    return " · " + _("val acc {acc}").format(acc=format(s.val_acc, fmt)) if s.val_acc is not None else ""



def run_option(s: Any) -> str:
    """A run in the Results picker (any state): "<id> · completed · val acc 0.944 · <name>"."""
    name = f" · {s.name}" if s.name else ""
    return f"{s.id} · {state_label(s.state)}{_acc(s, '.3f')}{name}"


def run_label(s: Any) -> str:
    """A completed run in the Predict and Insights pickers: "<name · ><id>  (digits, resnet18 · val acc 94%)"."""
    name = f"{s.name} · " if s.name else ""
    return f"{name}{s.id}  ({s.dataset}, {'+'.join(s.backbones)}{_acc(s, '.0%')})"


def run_title(s: Any, kind: str) -> str:
    """A short name for a run in tables and legends: its name, else "<kind> <backbones>", and the id's tail."""
    return f"{s.name or kind + ' ' + '+'.join(s.backbones)} · {s.id[-4:]}"


def weights_run_label(s: Any) -> str:
    """A completed run offered as a backbone's weights source on the Train page."""
    return _("run · {run_id}").format(run_id=s.id) + _acc(s, ".3f")
