"""Binary segmentation metrics: per image and pooled over a split, with one empty-mask policy.

Conventions (the same in every function):

- ``masks_true``: (N, H, W) {0, 1} ground truth; ``probs``: (N, H, W) lesion probabilities in
  [0, 1] (sigmoid already applied) or a binary prediction. A pixel is predicted lesion when
  ``prob >= threshold`` (0.5).
- Distances are Euclidean, in pixels of the stored image (the 64-px finetuning grid), between
  the mask *boundaries* (foreground pixels with a background 4-neighbour or on the image edge:
  ``mask XOR binary_erosion(mask)``, MONAI's ``get_mask_edges``). HD = the larger of the two
  directed maxima; HD95 = the larger of the two directed 95th percentiles (linear
  interpolation), which is MONAI's ``compute_hausdorff_distance(..., percentile=95)``, not
  MedPy's percentile of the pooled distances. Both are also given in original-image pixels and
  in millimetres where the caller knows the scale (:func:`scale_distances`).

Empty-mask policy (applied everywhere, written here once):

- A *lesion image* has a non-empty ground truth; a *normal image* has an empty one.
- Per-image metrics (Dice, IoU, pixel accuracy, precision, recall, HD, HD95) are averaged over
  lesion images only. Normal images are reported separately: ``normal_fp_images`` = number of
  normal images with at least one predicted pixel, ``normal_fp_rate`` = their fraction,
  ``normal_pred_area`` = mean predicted area (pixels).
- A *missed lesion* is a lesion image whose prediction is empty (``missed_lesions`` counts
  them). Its precision (0/0) and distances (to an empty set) have no value of their own; with
  the default ``miss="worst"`` it scores precision 0 and HD = HD95 = the image diagonal (the
  largest distance the image allows), so a model that misses lesions can never look better
  than one that finds them. ``miss="undefined"`` leaves them NaN instead. Either way nothing is
  dropped silently: ``<metric>_undefined`` counts the lesion images whose value is NaN and so
  left out of that mean (0 under the default for every metric on the 64-px grid).
- The pooled ("micro") metrics ``*_pooled`` sum TP/FP/FN/TN over *all* pixels of *all* images
  of the split (normal ones included), which is how a thesis-style single number over the
  whole split is obtained.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

THRESHOLD = 0.5

PER_IMAGE_METRICS = ("dice", "iou", "pixel_accuracy", "precision", "recall", "hd", "hd95")
"""Per-image metric names on the stored grid, in the column order of ``per_image_<split>.csv``."""

SCALED_DISTANCES = ("hd_orig_px", "hd95_orig_px", "hd_mm", "hd95_mm")
"""HD and HD95 in original-image pixels and in millimetres (:func:`scale_distances`)."""

MISS_POLICIES = ("worst", "undefined")
"""Scores of a missed lesion (empty prediction): ``worst`` = precision 0, HD = HD95 = the image
diagonal (default); ``undefined`` = NaN, counted in ``<metric>_undefined``."""


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
    background), i.e. ``mask XOR binary_erosion(mask)`` as MONAI's ``get_mask_edges``. A single
    pixel is its own boundary."""
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
    """(HD, HD95) in pixels between the boundaries of two (H, W) masks (MONAI's definitions,
    see the module docstring); (nan, nan) when either mask is empty (the distance to an empty
    set is undefined: :func:`per_image_metrics` applies the miss policy)."""
    t = np.asarray(mask_true).astype(bool)
    p = np.asarray(mask_pred).astype(bool)
    if not t.any() or not p.any():
        return float("nan"), float("nan")
    d_pt, d_tp = surface_distances(p, t)
    hd = max(float(d_pt.max()), float(d_tp.max()))
    hd95 = max(float(np.percentile(d_pt, 95)), float(np.percentile(d_tp, 95)))
    return hd, hd95


def per_image_metrics(
    masks_true: np.ndarray,
    probs: np.ndarray,
    threshold: float = THRESHOLD,
    *,
    distances: bool = True,
    miss: str = "worst",
) -> dict[str, np.ndarray]:
    """Per-image metrics of a split, each float64 (N,) (nan = undefined), plus the counts.

    Keys: PER_IMAGE_METRICS, ``tp, fp, fn, tn``, ``lesion`` (bool: non-empty ground truth),
    ``pred_area`` (predicted pixels), ``missed`` (bool: lesion image, empty prediction).
    ``miss``: the score of a missed lesion (:data:`MISS_POLICIES`). With ``distances=False``
    HD and HD95 are left nan (cheaper, for per-epoch validation).
    masks_true: (N, H, W) {0,1}; probs: (N, H, W) probabilities or a binary prediction.
    """
    if miss not in MISS_POLICIES:
        raise ValueError(f"miss policy {miss!r}; valid: {', '.join(MISS_POLICIES)}")
    t = np.asarray(masks_true).astype(bool)
    p = binarize(probs, threshold)
    counts = confusion_counts(t, p)
    out: dict[str, np.ndarray] = dict(overlap_from_counts(**counts))
    lesion = t.any(axis=(1, 2))
    pred_area = p.sum(axis=(1, 2)).astype(np.int64)
    missed = lesion & (pred_area == 0)
    hd = np.full(len(t), np.nan)
    hd95 = np.full(len(t), np.nan)
    for i in range(len(t) if distances else 0):
        hd[i], hd95[i] = hausdorff(t[i], p[i])
    if miss == "worst":
        out["precision"] = np.where(missed, 0.0, out["precision"])
        if distances and len(t):
            diagonal = float(np.hypot(*t.shape[1:]))
            hd, hd95 = np.where(missed, diagonal, hd), np.where(missed, diagonal, hd95)
    out["hd"], out["hd95"] = hd, hd95
    out.update(counts)
    out["lesion"] = lesion
    out["pred_area"] = pred_area
    out["missed"] = missed
    return out


def scale_distances(
    per_image: dict[str, np.ndarray], orig_px: np.ndarray, mm: np.ndarray
) -> dict[str, np.ndarray]:
    """HD and HD95 of :func:`per_image_metrics` in original-image pixels and millimetres.

    orig_px: (N,) original pixels per stored pixel (a finetuning image is the original padded
    to a square of side S and resized to 64, so S / 64); mm: (N,) millimetres per stored pixel
    (that times the DICOM pixel spacing). NaN where unknown. The distances are measured on the
    stored grid and scaled, so they carry its quantisation (one stored pixel = ``orig_px``).
    Returns the :data:`SCALED_DISTANCES` keys, each float64 (N,).
    """
    orig_px = np.asarray(orig_px, dtype=np.float64)
    mm = np.asarray(mm, dtype=np.float64)
    return {
        "hd_orig_px": per_image["hd"] * orig_px,
        "hd95_orig_px": per_image["hd95"] * orig_px,
        "hd_mm": per_image["hd"] * mm,
        "hd95_mm": per_image["hd95"] * mm,
    }


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

    Names: ``<m>`` (mean over lesion images where defined) and ``<m>_undefined`` (lesion images
    where it is not) for every per-image metric present (PER_IMAGE_METRICS and, when given,
    SCALED_DISTANCES); ``hd_median, hd95_median, dice_median``; ``<m>_pooled`` for the five
    overlap metrics (micro over all pixels of all images); ``n_images, n_lesion, n_normal,
    missed_lesions, normal_fp_images, normal_fp_rate, normal_pred_area``.
    """
    lesion = np.asarray(per_image["lesion"], dtype=bool)
    normal = ~lesion
    out: dict[str, float] = {}
    for m in (*PER_IMAGE_METRICS, *SCALED_DISTANCES):
        if m not in per_image:
            continue
        values = np.asarray(per_image[m], dtype=np.float64)[lesion]
        out[m] = _nanmean(values)
        out[f"{m}_undefined"] = float(np.isnan(values).sum())
    for m in ("dice", "hd", "hd95"):
        out[f"{m}_median"] = _nanmedian(per_image[m][lesion])
    pooled = overlap_from_counts(*(per_image[k].sum() for k in ("tp", "fp", "fn", "tn")))
    for m, v in pooled.items():
        out[f"{m}_pooled"] = float(v)
    area = np.asarray(per_image["pred_area"])
    out["n_images"] = float(len(lesion))
    out["n_lesion"] = float(lesion.sum())
    out["n_normal"] = float(normal.sum())
    out["missed_lesions"] = float((lesion & (area == 0)).sum())
    out["normal_fp_images"] = float((normal & (area > 0)).sum())
    out["normal_fp_rate"] = float(np.mean(area[normal] > 0)) if normal.any() else float("nan")
    out["normal_pred_area"] = float(np.mean(area[normal])) if normal.any() else float("nan")
    return out


def segmentation_metrics(
    masks_true: np.ndarray,
    probs: np.ndarray,
    threshold: float = THRESHOLD,
    *,
    distances: bool = True,
    miss: str = "worst",
) -> dict[str, float]:
    """Every scalar segmentation metric of one split (see :func:`aggregate`); nan = undefined.

    masks_true: (N, H, W) {0,1}; probs: (N, H, W) probabilities or binary.
    """
    return aggregate(
        per_image_metrics(masks_true, probs, threshold, distances=distances, miss=miss)
    )
