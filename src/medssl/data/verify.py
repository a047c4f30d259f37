"""The checks a database passes on load: arrays, manifest and ``database.json`` agree.

Each array is uint8 (N, S, S); the masks have the finetuning images' shape; the manifest
describes every array row of its role exactly once (indices 0..N-1); S is the side of
``database.json``'s recipe and the per role/split/label counts are its ``counts``; the
content checksum (:func:`array_checksum`) equals its ``checksum``. An edited array or
manifest.csv fails the checksum: the database must be rebuilt, since a run's config records
the checksum as the identity of its data. Every failure is a DataError that says to rebuild.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from medssl.data.manifest import REBUILD, ROLES, ManifestRow, counts
from medssl.data.meta import DatabaseMeta
from medssl.errors import DataError


def array_checksum(arrays: Mapping[str, np.ndarray], manifest: Sequence[ManifestRow]) -> str:
    """sha1 over the arrays' bytes and the manifest's role/index/split/label/patient columns."""
    h = hashlib.sha1()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    for r in sorted(manifest, key=lambda r: (r.role, r.index)):
        h.update(f"{r.role}|{r.index}|{r.split}|{r.label}|{r.patient}\n".encode())
    return h.hexdigest()


def array_role(key: str) -> str:
    """The role whose manifest rows describe array ``key`` (the masks: finetune)."""
    return "finetune" if key == "finetune_masks" else key


def verify_contents(
    arrays: Mapping[str, np.ndarray],
    manifest: Sequence[ManifestRow],
    meta: DatabaseMeta,
    path: Path | None,
    *,
    checksum: bool = True,
) -> None:
    """Every check of the module docstring (the checksum only with ``checksum``); ``path``
    is the folder the database was read from (None in memory), named in the errors."""
    where = str(path) if path is not None else meta.name
    _check_arrays(arrays, manifest, meta, path)
    _check_indices(manifest, f"{where}/manifest.csv")
    _check_counts(manifest, meta, where)
    if checksum:
        actual = array_checksum(arrays, manifest)
        if meta.checksum != actual:
            raise DataError(
                f"contents differ from the checksum in database.json (recorded "
                f"{meta.checksum[:12]}, computed {actual[:12]}): an array or manifest.csv changed "
                f"after it was built, and runs record that checksum as the data's identity; {REBUILD}",
                file=where,
            )


def _check_arrays(
    arrays: Mapping[str, np.ndarray],
    manifest: Sequence[ManifestRow],
    meta: DatabaseMeta,
    path: Path | None,
) -> None:
    sizes = meta.sizes
    for key, a in arrays.items():
        role = array_role(key)
        file = str(path / f"{key}.npy") if path is not None else key
        n = sum(r.role == role for r in manifest)
        side = sizes.get(role)
        expected = f"uint8 ({n}, {side or 'S'}, {side or 'S'})"
        if (
            a.dtype != np.uint8
            or a.ndim != 3
            or a.shape[0] != n
            or a.shape[1] != a.shape[2]
            or (side is not None and a.shape[1] != side)
        ):
            raise DataError(
                f"holds {a.dtype} {tuple(a.shape)}, expected {expected}: {n} images of role "
                f"{role} in manifest.csv{f', side {side} in database.json' if side else ''}; "
                f"{REBUILD}",
                file=file,
            )
    if arrays["finetune_masks"].shape != arrays["finetune"].shape:
        raise DataError(
            f"finetune_masks {arrays['finetune_masks'].shape} and finetune "
            f"{arrays['finetune'].shape} differ: expected one mask per finetuning image; {REBUILD}",
            file=str(path) if path is not None else meta.name,
        )


def _check_indices(manifest: Sequence[ManifestRow], file: str) -> None:
    for role in ROLES:
        idx = sorted(r.index for r in manifest if r.role == role)
        if idx != list(range(len(idx))):
            bad = next(i for i, j in enumerate(idx) if i != j)
            raise DataError(
                f"the {role} rows' index column is not 0..{len(idx) - 1} (each array row once): "
                f"index {idx[bad]} where {bad} was expected; {REBUILD}",
                file=file,
            )


def _check_counts(manifest: Sequence[ManifestRow], meta: DatabaseMeta, where: str) -> None:
    recorded, found = meta.counts, counts(manifest)
    diff = sorted(k for k in set(recorded) | set(found) if recorded.get(k, 0) != found.get(k, 0))
    if diff:
        shown = ", ".join(f"{k} {recorded.get(k, 0)} vs {found.get(k, 0)}" for k in diff[:4])
        raise DataError(
            f"manifest.csv does not match database.json's counts (recorded vs found: {shown}); "
            f"{REBUILD}",
            file=where,
        )
