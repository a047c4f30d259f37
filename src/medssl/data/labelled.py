"""The labelled (finetuning) splits of a database as arrays, for any fine-tuning task.

``finetune_splits(db, needs_masks=...)`` gives one :class:`SplitData` per split (train, val,
test) in array-row order, with what tasks and reports need beside the pixels: labels, masks,
ids, patients, sources and the scale of a stored pixel in original pixels and millimetres. The
database's split column can be replaced (K-fold cross-validation) by ``split_override``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from medssl.data.database import Database
from medssl.data.manifest import SPLITS, ManifestRow
from medssl.data.records import CLASSES
from medssl.errors import ConfigError, DataError

FINETUNE_SPLITS: tuple[str, ...] = SPLITS["finetune"]  # train, val, test


@dataclass
class SplitData:
    """One split of the finetuning set, in array-row order.

    images: uint8 (N, H, W); labels: int64 (N,); masks: uint8 (N, H, W) {0,1};
    rows: finetune.npy row indices (N,); ids: manifest ``file``; patients: manifest ``patient``;
    sources: manifest ``source``; orig_px: (N,) original-image pixels per stored pixel
    (max(orig_h, orig_w) / stored size: the original was padded to a square and resized);
    mm: (N,) millimetres per stored pixel (orig_px x the manifest's pixel spacing, where rows
    and columns agree). NaN where the manifest does not know.
    """

    rows: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    ids: list[str]
    patients: list[str]
    sources: list[str] = field(default_factory=list)
    orig_px: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mm: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.rows)


def serves(db: Database, *, needs_masks: bool) -> bool:
    """Whether ``db`` serves a task: every database has labels; masks only where its recipe's
    ``tasks`` (``database.json``) include segmentation."""
    return not needs_masks or "segmentation" in db.tasks


Override = Mapping[str, Sequence[int]] | Sequence[str]
"""A replacement of the split column: {split: rows of finetune.npy}, or one split name per
finetuning row, in row order."""


def finetune_splits(
    db: Database,
    *,
    needs_masks: bool,
    split_override: Override | None = None,
    task: str = "fine-tuning",
) -> tuple[dict[str, SplitData], int]:
    """The train/val/test splits and the number of images left out for lacking a mask.

    ``split_override`` replaces the database's split column (K-fold cross-validation over the
    finetuning pool): either ``{"train": rows, "val": rows, "test": rows}`` (rows of
    ``finetune.npy``) or one split name per finetuning row, in row order. With
    ``needs_masks`` (segmentation), images whose manifest row has ``has_mask = 0`` are left
    out (counted); an empty split is an error naming the database and ``task``, and so is a
    task that needs masks on a database built for classification only (its recipe's ``tasks``).
    """
    if needs_masks and not serves(db, needs_masks=True):
        raise DataError(
            f"database {db.name!r} serves {', '.join(db.tasks)} only (database.json "
            f"tasks, from its recipe's tasks), and {task} needs lesion masks; build it with "
            "segmentation in the recipe's tasks",
            file=str(db.path) if db.path else None,
        )
    by_row = {r.index: r for r in db.rows("finetune")}
    if split_override is None:
        assign = {s: db.indices("finetune", s) for s in FINETUNE_SPLITS}
    else:
        assign = _override(db, by_row, split_override)
    excluded = 0
    if needs_masks:
        n_all = sum(len(r) for r in assign.values())
        assign = {
            s: np.array([i for i in rows if by_row[int(i)].has_mask], dtype=np.int64)
            for s, rows in assign.items()
        }
        excluded = n_all - sum(len(r) for r in assign.values())
    out: dict[str, SplitData] = {}
    for s, rows in assign.items():
        if len(rows) == 0 and s in ("train", "val"):
            why = (
                f"; {excluded} finetuning images lack a lesion mask (has_mask = 0)"
                if excluded
                else ""
            )
            raise DataError(
                f"the {s} split of database {db.name!r} is empty for {task}{why}; "
                "build a database whose finetuning set has masked images in every split",
                file=str(db.path) if db.path else None,
            )
        out[s] = _split_data(db, np.sort(rows), by_row)
    return out, excluded


def _override(
    db: Database, by_row: Mapping[int, ManifestRow], split_override: Override
) -> dict[str, np.ndarray]:
    """{split: rows} of ``split_override``, checked: known splits, train and val present,
    finetuning rows each in one split at most."""
    if not isinstance(split_override, Mapping):
        names = [str(x) for x in split_override]
        if len(names) != len(by_row) or set(names) - set(FINETUNE_SPLITS):
            raise ConfigError(
                f"split_override: expected one of {FINETUNE_SPLITS} per finetuning row "
                f"({len(by_row)} rows of database {db.name!r}); got {len(names)} values {sorted(set(names))}"
            )
        rows_sorted = sorted(by_row)
        split_override = {
            s: [r for r, n in zip(rows_sorted, names, strict=True) if n == s]
            for s in FINETUNE_SPLITS
        }
    unknown = sorted(set(split_override) - set(FINETUNE_SPLITS))
    if unknown or "train" not in split_override or "val" not in split_override:
        raise ConfigError(
            f"split_override: keys must be train, val (and test); got {sorted(split_override)}"
        )
    assign = {s: np.asarray(split_override.get(s, []), dtype=np.int64) for s in FINETUNE_SPLITS}
    seen: set[int] = set()
    for s, rows in assign.items():
        bad = sorted(set(rows.tolist()) - set(by_row))
        if bad:
            raise ConfigError(
                f"split_override[{s!r}]: rows {bad[:10]} are not finetuning rows of database {db.name!r}"
            )
        if seen & set(rows.tolist()):
            raise ConfigError(
                f"split_override[{s!r}]: rows {sorted(seen & set(rows.tolist()))[:10]} are in two splits"
            )
        seen |= set(rows.tolist())
    return assign


def _split_data(db: Database, rows: np.ndarray, by_row: Mapping[int, ManifestRow]) -> SplitData:
    images, masks = db.arrays["finetune"], db.arrays["finetune_masks"]
    manifest_rows = [by_row[int(i)] for i in rows]
    orig_px = np.array([_orig_px(r, images.shape[-1]) for r in manifest_rows], dtype=float)
    spacing = np.array([_isotropic_spacing(r) for r in manifest_rows])
    return SplitData(
        rows=rows,
        images=np.asarray(images[rows]),
        labels=np.array([CLASSES.index(r.label) for r in manifest_rows], dtype=np.int64),
        masks=np.asarray(masks[rows]).astype(np.uint8),
        ids=[r.file for r in manifest_rows],
        patients=[r.patient for r in manifest_rows],
        sources=[r.source for r in manifest_rows],
        orig_px=orig_px,
        mm=orig_px * spacing,
    )


def _orig_px(row: ManifestRow, size: int) -> float:
    """Original pixels per stored pixel of a finetuning image (NaN when its size is unknown:
    an in-memory database)."""
    side = max(row.orig_h or 0, row.orig_w or 0)
    return side / size if side > 0 else float("nan")


def _isotropic_spacing(row: ManifestRow) -> float:
    """mm per original pixel, where the manifest knows it and rows and columns agree (within
    1%); NaN otherwise: a Euclidean distance on an anisotropic grid has no single mm scale."""
    r, c = row.spacing_row_mm, row.spacing_col_mm
    if r is None or c is None or not (r > 0 and c > 0) or abs(r - c) > 0.01 * max(r, c):
        return float("nan")
    return (r + c) / 2
