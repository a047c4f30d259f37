"""Binary segmentation metrics: per image and pooled over a split, with one empty-mask policy.

Conventions (the same in every function):

- ``masks_true``: (N, H, W) {0, 1} ground truth; ``probs``: (N, H, W) lesion probabilities in
  [0, 1] (sigmoid already applied) or a binary prediction. A pixel is predicted lesion when
  ``prob >= threshold`` (0.5).
- Distances (Hausdorff, HD95) are Euclidean, in pixels of the stored image (64 px finetuning
  images), between the mask *boundaries* (foreground pixels with a background 4-neighbour or
  on the image edge), as in MedPy/MONAI. HD = max of all boundary-to-boundary distances;
  HD95 = 95th percentile of the pooled directed distances of both boundaries (MedPy ``hd95``).

Empty-mask policy (applied everywhere, written here once):

- A *lesion image* has a non-empty ground truth; a *normal image* has an empty one.
- Per-image overlap metrics (Dice, IoU, pixel accuracy, precision, recall, HD, HD95) are
  averaged over lesion images only (``nanmean``). Within an image, 0/0 is nan: precision of an
  empty prediction, and HD/HD95 when the prediction (or ground truth) is empty — these are
  undefined, never 0; the count of lesion images with an empty prediction is reported as
  ``lesion_empty_pred``.
- Normal images are reported separately: ``normal_fp_rate`` = fraction of normal images with
  at least one predicted pixel, ``normal_pred_area`` = mean predicted area (pixels).
- The pooled ("micro") metrics ``*_pooled`` sum TP/FP/FN/TN over *all* pixels of *all* images
  of the split (normal ones included), which is how a thesis-style single number over the
  whole split is obtained.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

THRESHOLD = 0.5

PER_IMAGE_METRICS = ("dice", "iou", "pixel_accuracy", "precision", "recall", "hd", "hd95")
"""Per-image metric names, in the column order of ``per_image_<split>.csv``."""


def binarize(probs: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """bool (…, H, W): ``probs >= threshold``."""
    return np.asarray(probs, dtype=np.float32) >= threshold


def confusion_counts(masks_true: np.ndarray, masks_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image pixel counts ``tp, fp, fn, tn``, each int64 (N,).

    masks_true, masks_pred: (N, H, W) binary (bool or {0, 1}).
    """
    t = np.asarray(masks_true).astype(bool)
    p = np.asarray(masks_pred).astype(bool)
    if t.shape != p.shape or t.ndim != 3:
        raise ValueError(f"masks must both be (N, H, W); got {t.shape} and {p.shape}")
    axes = (1, 2)
    return {
        "tp": (t & p).sum(axes).astype(np.int64),
        "fp": (~t & p).sum(axes).astype(np.int64),
        "fn": (t & ~p).sum(axes).astype(np.int64),
        "tn": (~t & ~p).sum(axes).astype(np.int64),
    }


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def overlap_from_counts(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """Dice, IoU, pixel accuracy, precision, recall from counts (arrays or scalars); nan on 0/0.

    Dice = 2TP/(2TP+FP+FN), IoU = TP/(TP+FP+FN), PA = (TP+TN)/all, precision = TP/(TP+FP),
    recall = TP/(TP+FN).
    """
    tp, fp, fn, tn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn, tn))
    return {
        "dice": _div(2 * tp, 2 * tp + fp + fn),
        "iou": _div(tp, tp + fp + fn),
        "pixel_accuracy": _div(tp + tn, tp + fp + fn + tn),
        "precision": _div(tp, tp + fp),
        "recall": _div(tp, tp + fn),
    }


def boundary(mask: np.ndarray) -> np.ndarray:
    """bool (H, W): foreground pixels with a background 4-neighbour (outside the image counts as
    background). A single pixel is its own boundary."""
    mask = np.asarray(mask).astype(bool)
    eroded = ndimage.binary_erosion(
        mask, structure=ndimage.generate_binary_structure(2, 1), border_value=0
    )
    return mask & ~eroded


def surface_distances(mask_a: np.ndarray, mask_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed boundary distances (pixels): from each boundary pixel of a to the nearest boundary
    pixel of b, and from b to a. float64 (n_a,), (n_b,). Both masks must be non-empty."""
    ba, bb = boundary(mask_a), boundary(mask_b)
    # distance_transform_edt gives, for each non-zero pixel, the distance to the nearest zero:
    # feed it ~boundary so the zeros are the other mask's boundary pixels.
    dist_to_b = ndimage.distance_transform_edt(~bb)
    dist_to_a = ndimage.distance_transform_edt(~ba)
    return dist_to_b[ba], dist_to_a[bb]


def hausdorff(mask_true: np.ndarray, mask_pred: np.ndarray) -> tuple[float, float]:
    """(HD, HD95) in pixels between the boundaries of two (H, W) masks; (nan, nan) when either
    mask is empty (the distance to an empty set is undefined)."""
    t = np.asarray(mask_true).astype(bool)
    p = np.asarray(mask_pred).astype(bool)
    if not t.any() or not p.any():
        return float("nan"), float("nan")
    d_tp, d_pt = surface_distances(t, p)
    both = np.concatenate([d_tp, d_pt])
    return float(both.max()), float(np.percentile(both, 95))


def per_image_metrics(
    masks_true: np.ndarray,
    probs: np.ndarray,
    threshold: float = THRESHOLD,
    *,
    distances: bool = True,
) -> dict[str, np.ndarray]:
    """Per-image metrics of a split, each float64 (N,) (nan = undefined), plus the counts.

    Keys: PER_IMAGE_METRICS, ``tp, fp, fn, tn``, ``lesion`` (bool: non-empty ground truth),
    ``pred_area`` (predicted pixels). With ``distances=False`` HD and HD95 are left nan (cheaper,
    for per-epoch validation).
    masks_true: (N, H, W) {0,1}; probs: (N, H, W) probabilities or a binary prediction.
    """
    t = np.asarray(masks_true).astype(bool)
    p = binarize(probs, threshold)
    counts = confusion_counts(t, p)
    out: dict[str, np.ndarray] = dict(overlap_from_counts(**counts))
    hd = np.full(len(t), np.nan)
    hd95 = np.full(len(t), np.nan)
    for i in range(len(t) if distances else 0):
        hd[i], hd95[i] = hausdorff(t[i], p[i])
    out["hd"], out["hd95"] = hd, hd95
    out.update(counts)
    out["lesion"] = t.any(axis=(1, 2))
    out["pred_area"] = p.sum(axis=(1, 2)).astype(np.int64)
    return out


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def _nanmedian(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(np.median(x)) if x.size else float("nan")


def aggregate(per_image: dict[str, np.ndarray]) -> dict[str, float]:
    """Split-level metrics from :func:`per_image_metrics` (the policy in the module docstring).

    Names: ``<m>`` (per-image mean over lesion images), ``hd_median, hd95_median, dice_median``,
    ``<m>_pooled`` for the five overlap metrics (micro over all pixels of all images),
    ``n_images, n_lesion, n_normal, lesion_empty_pred, normal_fp_rate, normal_pred_area``.
    """
    lesion = np.asarray(per_image["lesion"], dtype=bool)
    normal = ~lesion
    out: dict[str, float] = {}
    for m in PER_IMAGE_METRICS:
        out[m] = _nanmean(per_image[m][lesion])
    for m in ("dice", "hd", "hd95"):
        out[f"{m}_median"] = _nanmedian(per_image[m][lesion])
    pooled = overlap_from_counts(*(per_image[k].sum() for k in ("tp", "fp", "fn", "tn")))
    for m, v in pooled.items():
        out[f"{m}_pooled"] = float(v)
    area = np.asarray(per_image["pred_area"])
    out["n_images"] = float(len(lesion))
    out["n_lesion"] = float(lesion.sum())
    out["n_normal"] = float(normal.sum())
    out["lesion_empty_pred"] = float((lesion & (area == 0)).sum())
    out["normal_fp_rate"] = float(np.mean(area[normal] > 0)) if normal.any() else float("nan")
    out["normal_pred_area"] = float(np.mean(area[normal])) if normal.any() else float("nan")
    return out


def segmentation_metrics(
    masks_true: np.ndarray,
    probs: np.ndarray,
    threshold: float = THRESHOLD,
    *,
    distances: bool = True,
) -> dict[str, float]:
    """Every scalar segmentation metric of one split (see :func:`aggregate`); nan = undefined.

    masks_true: (N, H, W) {0,1}; probs: (N, H, W) probabilities or binary.
    """
    return aggregate(per_image_metrics(masks_true, probs, threshold, distances=distances))
