"""The ``database.json`` counts of the label and mask policies (``docs/datasets.md``, "What
serves which task"), over the images a build accepted.

- a finetuning normal is an image without a finding: records that are
  ``normal_with_finding`` (CBIS-DDSM's BENIGN_WITHOUT_CALLBACK read as normal) are never
  finetuning candidates, and pretraining counts them;
- a finetuning image labelled benign/malignant whose mask is empty after loading (INbreast
  calcification-only findings) is stored with ``has_mask = 0``: classification uses it,
  segmentation leaves it out;
- the breast crop and the mask downsampling record their rules and what they did.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from medssl.data.fill import Accepted
from medssl.data.recipe import Recipe


def label_policy_counts(accepted: list[Accepted], recipe: Recipe) -> dict[str, Any]:
    """The ``database.json`` counts of the label and mask policies (see the module docstring).

    - ``empty_lesion_masks``: {source: finetuning images labelled benign/malignant whose mask
      is empty, stored with has_mask = 0}, every finetuning source listed;
    - ``normals_with_finding``: {source: pretraining normals that show a finding}, every
      pretraining source listed (finetuning holds none);
    - ``crop``: the crop rule (:func:`medssl.data.preprocess.breast_box`) and how many images
      were cropped and widened to hold their lesion mask, in total and ``by_source``;
    - ``coarse_masks``: {source: finetuning masks that are approximate regions};
    - ``mask_resize``: the mask downsampling rule (:func:`medssl.data.preprocess.downsample_mask`)
      and, over the finetuning masks, ``components`` (connected lesion components) and
      ``rescued`` (those the coverage rule alone would have erased, kept as one pixel),
      in total and ``by_source``.
    """
    ft = [a for a in accepted if a.role == "finetune"]
    empty = {s: 0 for s in sorted(recipe.quota("finetune"))}
    for a in ft:
        empty[a.record.source] += int(a.item.empty_lesion)
    with_finding = {s: 0 for s in sorted(recipe.quota("pretrain"))}
    for a in accepted:
        if a.role == "pretrain":
            with_finding[a.record.source] += int(a.record.normal_with_finding)
    coarse = Counter(
        a.record.source for a in ft if a.record.coarse_mask and a.item.mask is not None
    )
    return {
        "crop": _crop_counts(accepted, recipe),
        "coarse_masks": dict(sorted(coarse.items())),
        "empty_lesion_masks": empty,
        "normals_with_finding": with_finding,
        "mask_resize": _mask_resize_counts(ft),
    }


def _crop_counts(accepted: list[Accepted], recipe: Recipe) -> dict[str, Any]:
    per: dict[str, dict[str, int]] = {}
    for a in accepted:
        if a.item.crop is not None:
            cell = per.setdefault(a.record.source, {"cropped": 0, "widened_for_mask": 0})
            cell["cropped"] += 1
            cell["widened_for_mask"] += int(a.item.crop_widened)
    return {
        "rule": CROP_RULES[recipe.crop],
        "cropped": sum(c["cropped"] for c in per.values()),
        "widened_for_mask": sum(c["widened_for_mask"] for c in per.values()),
        "by_source": dict(sorted(per.items())),
    }


def _mask_resize_counts(finetune: list[Accepted]) -> dict[str, Any]:
    by_source: dict[str, dict[str, int]] = {}
    for a in finetune:
        if a.item.mask is not None:
            cell = by_source.setdefault(a.record.source, {"components": 0, "rescued": 0})
            cell["components"] += a.item.mask.components
            cell["rescued"] += a.item.mask.rescued
    return {
        "rule": MASK_RULE,
        "components": sum(c["components"] for c in by_source.values()),
        "rescued": sum(c["rescued"] for c in by_source.values()),
        "by_source": dict(sorted(by_source.items())),
    }


MASK_RULE = "area coverage >= 0.5; every 8-connected lesion keeps its best-covered pixel"
CROP_RULES = {
    "none": "none: whole images",
    "breast": "mammograms: grey > 0.05, largest 8-connected component, bounding box + 2% "
    "margin, widened to hold the lesion mask",
}
