"""Training checkpoints: atomic save, ``weights_only=True`` load, RNG states, fingerprints.

A checkpoint is a plain dict of tensors and Python scalars (so ``torch.load(...,
weights_only=True)`` can read it): ``model``, ``optimizer``, ``scheduler`` (state dicts),
``epoch`` (last completed, 0-based), ``global_step``, ``rng`` (torch / numpy / python / cuda),
``history`` (per-epoch log dicts) and ``fingerprint`` (the flat resolved config the run was
started with; a resume with a different fingerprint is refused).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medssl.artifacts import save_torch
from medssl.errors import TrainingError
from medssl.runfiles import BEST, CHECKPOINT, LAST

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` atomically (a crash leaves the previous checkpoint intact)."""
    return save_torch(path, checkpoint_record(state))


def checkpoint_record(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` as a checkpoint file holds it (with its format number)."""
    return {"format": CHECKPOINT_FORMAT, **state}


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no checkpoint to resume from; start the run without --resume")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise TrainingError(
            f"{path}: cannot read checkpoint ({e}); delete it or choose another --out"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(
            f"{path}: not a medssl checkpoint (format {CHECKPOINT_FORMAT} expected)"
        )
    return state


def load_best(module: torch.nn.Module, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Load the run's best.pt into ``module``; {"epoch", "value"} of that epoch.

    When no epoch had a defined monitor value (e.g. val MCC of a constant predictor, which the
    trainer never counts as an improvement) there is no best.pt: the last epoch's weights
    (checkpoint.pt) become best.pt, marked with value nan.
    """
    out_dir = Path(out_dir)
    path = out_dir / BEST
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        last = load_checkpoint(out_dir / CHECKPOINT)
        state = {
            "model": last["model"],
            "epoch": last["epoch"],
            "monitor": None,
            "value": float("nan"),
        }
        save_torch(path, state)
    module.load_state_dict(state["model"])
    value = state.get("value")
    return {"epoch": int(state["epoch"]), "value": float(value) if value is not None else None}


def clear_resume_state(out_dir: str | os.PathLike, *, keep_last: bool = False) -> None:
    """Remove a finished run's resume state (checkpoint.pt: weights and optimizer moments, about
    three times the model); best.pt, the records and the figures stay. With ``keep_last`` the
    last epoch's weights are first saved alone as last.pt (``{"model", "epoch"}``, the model's
    size, the same layout as best.pt)."""
    out_dir = Path(out_dir)
    path = out_dir / CHECKPOINT
    if keep_last and path.is_file():
        state = load_checkpoint(path)
        save_torch(out_dir / LAST, {"model": state["model"], "epoch": state["epoch"]})
    path.unlink(missing_ok=True)


def rng_state() -> dict[str, Any]:
    """All global RNG states, in a form ``weights_only`` loading accepts (no numpy objects)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(
        (
            n["kind"],
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and tuples become lists."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, (list, tuple)) else v
    return out


def check_fingerprint(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, path: str | os.PathLike
) -> None:
    """Refuse to resume a run whose configuration differs, naming every differing field."""
    a, b = flatten(saved), flatten(current)
    diff = [
        f"{k}: checkpoint {a.get(k, '<absent>')!r} vs now {b.get(k, '<absent>')!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]
    if diff:
        raise TrainingError(
            f"{path}: cannot resume, the checkpoint was written with another configuration "
            f"({'; '.join(diff)}); rerun with the same settings or choose another --out"
        )


def _to_lists(x: Any) -> Any:
    return [_to_lists(v) for v in x] if isinstance(x, (list, tuple)) else x


def _to_tuples(x: Any) -> Any:
    return tuple(_to_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def snapshot(obj: Any) -> Any:
    """``obj`` with every tensor cloned (detached): a state dict that later optimizer steps
    cannot reach. ``lightning_utilities``' ``apply_to_collection`` walks the nesting."""
    from lightning_utilities.core.apply_func import apply_to_collection

    return apply_to_collection(obj, torch.Tensor, lambda t: t.detach().clone())


class BackgroundWriter:
    """Writes a training run's files in a thread while training goes on.

    ``submit(files)`` waits for the previous write to finish, then writes ``files`` — (path,
    object) pairs whose tensors the caller has snapshotted (:func:`snapshot`), so later
    optimizer steps cannot reach them — in the given order with
    :func:`medssl.artifacts.save_torch` (atomic, fsynced): the files on disk are always whole
    ones of a finished epoch. ``close()`` waits for the last write; a write's error is raised
    there or at the next ``submit``.

    Not Lightning's ``AsyncCheckpointIO`` (pytorch_lightning): it queues saves without a bound
    (a copy of weights and Adam moments per pending save when the disk is slower than training)
    and saves through a CheckpointIO, not medssl's atomic, fsynced ``save_torch``.
    """

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medssl-save")
        self._pending: Any = None

    def submit(self, files: list[tuple[Path, Any]]) -> None:
        self.wait()
        self._pending = self._pool.submit(_write_all, list(files))

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()  # re-raises the write's error

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def _write_all(files: list[tuple[Path, Any]]) -> None:
    for path, obj in files:
        save_torch(path, obj)
