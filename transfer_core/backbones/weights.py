"""Weights for a body: torchvision's ImageNet weights from the hub cache, user files, and loading them.

Every read is ``weights_only=True`` (never arbitrary pickles), and every failure is a
:class:`~transfer_core.errors.WeightsError` with one user-facing line: offline and not
cached says which file to place where; a file that does not fit the body says how.
:func:`load_state_into_body` changes nothing unless every tensor fits.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import threading
import urllib.error
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlparse

import torch
from torch import nn

from ..checkpoint_files import read_checkpoint
from ..errors import WeightsError
from ..i18n import _
from .groups import owns
from .registry import canonical_name, default_weights
from .spec import BackboneSpec

__all__ = ["imagenet_weights_info", "load_imagenet_state", "load_weights_file", "load_state_into_body"]

log = logging.getLogger(__name__)

_DOWNLOAD_TIMEOUT_S = 60.0


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_weights_info(name: str) -> dict[str, Any]:
    """Where the DEFAULT ImageNet weights come from and whether they are already on disk."""
    key = canonical_name(name)
    weights = default_weights(key)
    filename = os.path.basename(urlparse(weights.url).path)
    cache_dir = _hub_checkpoints()
    return {
        "weights": f"{type(weights).__name__}.{weights.name}",
        "url": weights.url,
        "filename": filename,
        "cache_dir": str(cache_dir),
        "cached": (cache_dir / filename).is_file(),
    }


def _reason(exc: BaseException) -> str:
    """First sentence of an exception, short enough for a one-line message."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        text = str(exc.reason)
    else:
        text = str(exc)
    line = (text.strip().splitlines() or [""])[0].split(". ")[0].strip()
    if not any(c.isalpha() for c in line):  # e.g. KeyError(101): the type says more
        line = f"{type(exc).__name__} {line}".strip()
    return line if len(line) <= 160 else line[:157] + "..."


def load_imagenet_state(name: str) -> dict[str, torch.Tensor]:
    """torchvision's DEFAULT ImageNet state dict, from the hub cache or downloaded into it.

    The state is in the full-model namespace (final layer included); pass it to
    :func:`load_state_into_body`, which drops the head keys.
    """
    key = canonical_name(name)
    info = imagenet_weights_info(key)
    path = Path(info["cache_dir"]) / info["filename"]
    if not info["cached"]:
        log.info("downloading %s to %s", info["url"], path)
    # torch.hub's download has no timeout: on a network that drops packets it would
    # hang the run forever. A socket default timeout turns that into a clear error.
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        state = torch.hub.load_state_dict_from_url(
            info["url"],
            model_dir=info["cache_dir"],
            map_location="cpu",
            progress=False,
            check_hash=True,
            file_name=info["filename"],
            weights_only=True,
        )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if path.is_file():
            raise WeightsError(_("ImageNet weights for {name} in {path} cannot be read ({reason})").format(
                name=key, path=path, reason=_reason(exc))) from None
        raise WeightsError(
            _("ImageNet weights for {name} are not cached and cannot be downloaded ({reason}): "
              "place {file} in {folder}").format(
                name=key, reason=_reason(exc), file=info["filename"], folder=info["cache_dir"])
        ) from None
    except Exception as exc:  # corrupt cached file, hash mismatch, unpickling refusal
        raise WeightsError(
            _("ImageNet weights for {name} in {path} are unreadable ({reason}): delete the file and retry").format(
                name=key, path=path, reason=_reason(exc))
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)
    return _as_state_dict(state, _("ImageNet weights for {name}").format(name=key))


def _as_state_dict(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """Accept a plain state_dict, or a checkpoint dict holding one under "state_dict" / "model"."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(_("{source} does not contain a state_dict").format(source=source))
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(_("{source} is not a state_dict: entry {key!r} is not a tensor").format(source=source, key=bad[0]))
    return dict(obj)


_READ: OrderedDict[tuple[str, int, int], dict[str, torch.Tensor]] = OrderedDict()
_READ_KEEP = 2  # the source of a sweep's trials, and one more
_READ_LOCK = threading.Lock()  # the training thread and the pages read weights at once


def load_weights_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a user-supplied weights file safely (``weights_only=True``, never arbitrary pickles).

    The last ``_READ_KEEP`` files read are kept (keyed by path, size and mtime): the many
    short runs of a sweep, all transferring from one source, read it once. Callers get
    their own dict of the shared tensors and must not change them in place (loading
    them into a model copies them)."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(_("weights file {path} does not exist").format(path=p))
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _READ_LOCK:
        if key in _READ:
            _READ.move_to_end(key)
            return dict(_READ[key])
    state = _read_weights_file(p)
    with _READ_LOCK:
        _READ[key] = state
        while len(_READ) > _READ_KEEP:
            _READ.popitem(last=False)
    return dict(state)


def _read_weights_file(p: Path) -> dict[str, torch.Tensor]:
    try:
        # torch warns on stderr about foreign pickle protocols before it refuses them: the
        # refusal below is the message, the warning would only break the one-line error.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = read_checkpoint(p)  # torch.load(weights_only=True); a run's frozen part merged back
    except WeightsError:
        raise
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower() or "unsupported global" in str(exc).lower():
            raise WeightsError(
                _("weights file {path} was refused: it contains Python objects, not only tensors "
                  "(save model.state_dict() instead)").format(path=p)
            ) from None
        raise WeightsError(_("weights file {path} is not a PyTorch checkpoint ({reason})").format(
            path=p, reason=_reason(exc))) from None
    except Exception as exc:  # truncated zips, empty files, random bytes: torch.load's errors vary
        raise WeightsError(_("weights file {path} is truncated or not a PyTorch checkpoint ({reason})").format(
            path=p, reason=_reason(exc))) from None
    return _as_state_dict(obj, _("weights file {path}").format(path=p))


def _ignored_prefixes(spec: BackboneSpec) -> tuple[str, ...]:
    """Keys of the full model that the body does not have by design."""
    aux = {"googlenet": ("aux1", "aux2"), "inception": ("AuxLogits",)}.get(spec.family, ())
    return (spec.head_path,) + aux


def _strip_wrapper_prefix(keys: Iterable[str]) -> str:
    keys = list(keys)
    for wrapper in ("module.", "_orig_mod."):  # DataParallel/DDP, torch.compile
        if keys and all(k.startswith(wrapper) for k in keys):
            return wrapper
    return ""


def _examples(label: str, keys: list[str]) -> list[str]:
    """``label`` is a translated template with a ``{key}`` placeholder."""
    return [label.format(key=k) for k in keys[:2]]


def load_state_into_body(body: nn.Module, spec: BackboneSpec, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy a full-model state dict into ``body``; nothing is changed unless everything fits.

    ``source`` names where the state came from for the message, e.g. ``"file
    /path/w.pt"``. Keys of the replaced final layer (and of GoogLeNet / Inception
    auxiliary heads) are dropped; any other difference raises :class:`WeightsError`.
    """
    prefix = _strip_wrapper_prefix(state.keys())
    ignored = _ignored_prefixes(spec)
    given = {k[len(prefix) :]: v for k, v in state.items()}
    given = {k: v for k, v in given.items() if not any(owns(p, k) for p in ignored)}
    expected = body.state_dict()
    # Checkpoints from before PyTorch 0.4.1 lack BatchNorm's counter; the module tolerates that.
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    mismatched = [
        k for k in given if k in expected and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        counts = []
        if missing:
            counts.append(_("{n} missing keys").format(n=len(missing)))
        if unexpected:
            counts.append(_("{n} unexpected keys").format(n=len(unexpected)))
        if mismatched:
            k = mismatched[0]
            counts.append(_("{n} shape mismatches ({key}: {given} vs {expected})").format(
                n=len(mismatched), key=k, given=tuple(given[k].shape), expected=tuple(expected[k].shape)))
        examples = _examples(_("missing {key!r}"), missing) + _examples(_("unexpected {key!r}"), unexpected)
        if examples:
            raise WeightsError(_("weights {source} does not fit {name}: {problems} (e.g. {examples})").format(
                source=source, name=spec.name, problems=", ".join(counts), examples=", ".join(examples)))
        raise WeightsError(_("weights {source} does not fit {name}: {problems}").format(
            source=source, name=spec.name, problems=", ".join(counts)))
    result = body.load_state_dict(given, strict=False)
    leftover = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if leftover or result.unexpected_keys:  # pragma: no cover - guarded by the checks above
        raise WeightsError(_("weights {source} does not fit {name}: {problems}").format(
            source=source, name=spec.name, problems=_("{n} missing keys").format(n=len(leftover))))
    log.info("loaded %d tensors from %s into %s", len(given), source, spec.name)
