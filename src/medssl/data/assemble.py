"""Accepted images -> the database's arrays and manifest rows, split by role.

Within a role the images are ordered by record key (``source:file``), so the arrays do not
depend on the draw order; the splits are stratified by class and grouped by patient
(:func:`medssl.data.splits.stratified_group_split`, thesis §5.1), duplicates of one role
sharing their merged patient group (:class:`medssl.data.fill.PatientGroups`).
"""

from __future__ import annotations

import numpy as np

from medssl.data.fill import Accepted, PatientGroups
from medssl.data.manifest import ROLES, SPLITS, ManifestRow
from medssl.data.quotas import record_key
from medssl.data.recipe import Recipe
from medssl.data.splits import stratified_group_split


def assemble(
    accepted: list[Accepted], recipe: Recipe, groups: PatientGroups, seed: int
) -> tuple[list[ManifestRow], dict[str, np.ndarray]]:
    """(manifest rows, {pretrain, finetune, finetune_masks: uint8 (N, S, S)})."""
    manifest: list[ManifestRow] = []
    arrays: dict[str, np.ndarray] = {}
    for role in ROLES:
        items = sorted((a for a in accepted if a.role == role), key=lambda a: record_key(a.record))
        size = recipe.sizes.pretrain if role == "pretrain" else recipe.sizes.finetune
        patients = [groups.find(a.group) for a in items]
        fractions = recipe.split_pretrain if role == "pretrain" else recipe.split_finetune
        labels = [a.record.label for a in items]
        splits = (
            stratified_group_split(labels, patients, fractions, SPLITS[role], seed) if items else []
        )
        arrays[role] = _stack([a.item.image for a in items], size)
        if role == "finetune":
            empty = np.zeros((size, size), np.uint8)
            masks = [a.item.mask.mask if a.item.mask is not None else empty for a in items]
            arrays["finetune_masks"] = _stack(masks, size)
        manifest += [
            _row(a, role, i, split, patient)
            for i, (a, split, patient) in enumerate(zip(items, splits, patients, strict=True))
        ]
    return manifest, arrays


def _stack(images: list[np.ndarray], size: int) -> np.ndarray:
    return np.stack(images) if images else np.zeros((0, size, size), np.uint8)


def _row(a: Accepted, role: str, index: int, split: str, patient: str) -> ManifestRow:
    r, item = a.record, a.item
    spacing = item.spacing or (None, None)
    return ManifestRow(
        role=role,
        index=index,
        split=split,
        source=r.source,
        file=r.file,
        label=r.label,
        modality=r.modality,
        patient=patient,
        patient_known=r.patient is not None,
        sha1=item.sha1,
        orig_h=item.orig_size[0],
        orig_w=item.orig_size[1],
        spacing_row_mm=None if spacing[0] is None else float(spacing[0]),
        spacing_col_mm=None if spacing[1] is None else float(spacing[1]),
        has_mask=item.mask is not None and not item.empty_lesion,
        multi_mask=r.multi_mask,
        normal_with_finding=r.normal_with_finding,
        coarse_mask=r.coarse_mask and item.mask is not None,
        crop_box=item.crop.text() if item.crop is not None else "",
    )
