"""Known-answer tests for medssl.metrics.segmentation (empty masks, single pixels, HD)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import directed_hausdorff
from sklearn import metrics as skm

from medssl.metrics import segmentation as S


def _square(size=16, r0=4, c0=4, h=4, w=4):
    m = np.zeros((size, size), np.uint8)
    m[r0 : r0 + h, c0 : c0 + w] = 1
    return m


def test_dice_hand_2x2():
    t = np.array([[[1, 1], [0, 0]]])
    p = np.array([[[1, 0], [1, 0]]])
    pi = S.per_image_metrics(t, p)
    assert pi["dice"][0] == pytest.approx(2 * 1 / (2 + 1 + 1))
    assert pi["iou"][0] == pytest.approx(1 / 3)
    assert pi["pixel_accuracy"][0] == pytest.approx(2 / 4)
    assert pi["precision"][0] == pytest.approx(0.5) and pi["recall"][0] == pytest.approx(0.5)


def test_threshold_on_probabilities():
    t = np.array([[[1, 0]]])
    assert S.per_image_metrics(t, np.array([[[0.5, 0.49]]]))["dice"][0] == 1.0


def test_perfect_and_fully_wrong():
    t = _square()[None]
    perfect = S.per_image_metrics(t, t.astype(np.float32))
    assert perfect["dice"][0] == 1.0 and perfect["iou"][0] == 1.0 and perfect["hd"][0] == 0.0
    assert perfect["hd95"][0] == 0.0
    wrong = S.per_image_metrics(t, 1 - t)
    assert wrong["dice"][0] == 0.0 and wrong["iou"][0] == 0.0 and wrong["pixel_accuracy"][0] == 0.0
    assert wrong["precision"][0] == 0.0 and wrong["recall"][0] == 0.0


def test_single_pixel_lesion():
    t = np.zeros((1, 8, 8), np.uint8)
    t[0, 3, 3] = 1
    p = np.zeros_like(t)
    p[0, 3, 6] = 1
    pi = S.per_image_metrics(t, p)
    assert pi["dice"][0] == 0.0
    assert pi["hd"][0] == pytest.approx(3.0) and pi["hd95"][0] == pytest.approx(3.0)
    assert S.per_image_metrics(t, t)["dice"][0] == 1.0


def test_hausdorff_known_shapes():
    # Two 4x4 squares shifted by 5 columns: every boundary point moves 5 px.
    a, b = _square(c0=2), _square(c0=7)
    hd, hd95 = S.hausdorff(a, b)
    assert hd == pytest.approx(5.0) and hd95 == pytest.approx(5.0)
    # Cross-check HD against scipy on boundary coordinates.
    pa, pb = np.argwhere(S.boundary(a)), np.argwhere(S.boundary(b))
    ref = max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])
    assert hd == pytest.approx(ref)
    # A square inside a bigger square: distance from the outer boundary to the inner boundary.
    big, small = _square(r0=2, c0=2, h=10, w=10), _square(r0=5, c0=5, h=4, w=4)
    hd, _ = S.hausdorff(big, small)
    pa, pb = np.argwhere(S.boundary(big)), np.argwhere(S.boundary(small))
    assert hd == pytest.approx(max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0]))
    assert hd == pytest.approx(math.hypot(3, 3))


def test_hd95_ignores_a_far_outlier():
    t = _square(size=64, r0=10, c0=10, h=20, w=20)
    p = t.copy()
    p[60, 60] = 1  # one stray pixel far away
    hd, hd95 = S.hausdorff(t, p)
    assert hd == pytest.approx(math.hypot(31, 31))
    assert hd95 < 1.0


def test_empty_mask_policy():
    lesion = _square()
    empty = np.zeros_like(lesion)
    t = np.stack([lesion, lesion, empty, empty])
    p = np.stack([lesion, empty, empty, _square(r0=0, c0=0, h=2, w=2)])
    pi = S.per_image_metrics(t, p)
    # a missed lesion (empty prediction) scores the worst: dice, recall and precision 0,
    # HD = HD95 = the image diagonal
    assert pi["dice"][1] == 0.0 and pi["recall"][1] == 0.0 and pi["precision"][1] == 0.0
    assert pi["hd"][1] == pytest.approx(math.hypot(16, 16)) == pi["hd95"][1]
    assert list(pi["missed"]) == [False, True, False, False]
    # normal image, empty prediction: 0/0 -> undefined (normal images are not averaged)
    assert math.isnan(pi["dice"][2]) and math.isnan(pi["hd"][2])
    agg = S.aggregate(pi)
    assert agg["n_lesion"] == 2 and agg["n_normal"] == 2
    assert agg["dice"] == pytest.approx(0.5)  # lesion images only
    assert agg["hd"] == pytest.approx(math.hypot(16, 16) / 2)  # (0 + diagonal) / 2
    assert agg["precision"] == pytest.approx(0.5)
    assert agg["missed_lesions"] == 1 and agg["normal_fp_images"] == 1
    assert agg["hd_undefined"] == 0 and agg["precision_undefined"] == 0
    assert agg["normal_fp_rate"] == pytest.approx(0.5)
    assert agg["normal_pred_area"] == pytest.approx(2.0)  # (0 + 4) / 2
    # pooled over all pixels of all images
    tp, fp, fn = 16, 4, 16
    assert agg["dice_pooled"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert agg["precision_pooled"] == pytest.approx(tp / (tp + fp))
    flat_t, flat_p = t.ravel(), p.ravel()
    assert agg["pixel_accuracy_pooled"] == pytest.approx(skm.accuracy_score(flat_t, flat_p))
    assert agg["iou_pooled"] == pytest.approx(skm.jaccard_score(flat_t, flat_p))
    assert agg["recall_pooled"] == pytest.approx(skm.recall_score(flat_t, flat_p))
    # the other policy leaves them undefined, and counts them
    undef = S.aggregate(S.per_image_metrics(t, p, miss="undefined"))
    assert undef["hd"] == 0.0 and undef["precision"] == 1.0
    assert undef["hd_undefined"] == 1 and undef["hd95_undefined"] == 1
    assert undef["precision_undefined"] == 1 and undef["dice_undefined"] == 0
    with pytest.raises(ValueError, match="miss policy"):
        S.per_image_metrics(t, p, miss="ignore")


def test_missing_lesions_never_improves_hd_or_precision():
    """10 lesion images: model A finds 7 exactly and misses 3; model B finds all 10 with a
    3-px boundary error. Dropping the misses (the old NaN policy) gave A HD 0 and precision
    1.0, better than B on both; counting them makes A worse."""
    t = np.stack([_square(size=32, r0=8, c0=8, h=10, w=10)] * 10)
    a = t.copy()
    a[7:] = 0
    b = np.stack([_square(size=32, r0=8, c0=11, h=10, w=10)] * 10)
    agg_a, agg_b = S.segmentation_metrics(t, a), S.segmentation_metrics(t, b)
    assert agg_b["hd"] == pytest.approx(3.0) and agg_b["missed_lesions"] == 0
    assert agg_a["missed_lesions"] == 3
    assert agg_a["hd"] == pytest.approx(3 * math.hypot(32, 32) / 10)
    assert agg_a["hd"] > agg_b["hd"]
    assert agg_a["precision"] == pytest.approx(0.7)
    old = S.segmentation_metrics(t, a, miss="undefined")
    assert old["hd"] == 0.0 and old["precision"] == 1.0 and old["hd_undefined"] == 3


def test_hd95_is_monai_max_of_directed_percentiles():
    """One row, ground truth at column 0, prediction at columns 0..9 (every pixel of a one-row
    mask is a boundary pixel). Directed distances: prediction -> truth 0, 1, ..., 9 (95th
    percentile 0.95 x 9 = 8.55, linear interpolation); truth -> prediction 0. MONAI's HD95 is
    the larger directed percentile, 8.55; MedPy's percentile of the 11 pooled distances
    would be 8.5. HD is 9."""
    t = np.zeros((1, 12), np.uint8)
    t[0, 0] = 1
    p = np.zeros_like(t)
    p[0, :10] = 1
    hd, hd95 = S.hausdorff(t, p)
    assert hd == pytest.approx(9.0)
    assert hd95 == pytest.approx(8.55)
    assert S.hausdorff(p, t) == (hd, hd95)  # symmetric


def test_distances_in_original_pixels_and_mm():
    t = np.stack([_square(), _square()])
    p = np.stack([_square(c0=6), np.zeros((16, 16), np.uint8)])
    pi = S.per_image_metrics(t, p)
    scaled = S.scale_distances(pi, orig_px=np.array([10.0, 10.0]), mm=np.array([0.7, np.nan]))
    assert scaled["hd_orig_px"][0] == pytest.approx(20.0)  # 2 px on the grid x 10
    assert scaled["hd_mm"][0] == pytest.approx(1.4)
    assert scaled["hd_orig_px"][1] == pytest.approx(10 * math.hypot(16, 16))  # a miss
    assert math.isnan(scaled["hd_mm"][1])  # spacing unknown
    agg = S.aggregate({**pi, **scaled})
    assert agg["hd_mm"] == pytest.approx(1.4) and agg["hd_mm_undefined"] == 1
    assert agg["hd_orig_px_undefined"] == 0


def test_all_normal_split_is_undefined_not_zero():
    t = np.zeros((3, 8, 8), np.uint8)
    agg = S.segmentation_metrics(t, np.zeros((3, 8, 8), np.float32))
    assert math.isnan(agg["dice"]) and math.isnan(agg["hd"]) and math.isnan(agg["dice_pooled"])
    assert agg["normal_fp_rate"] == 0.0 and agg["pixel_accuracy_pooled"] == 1.0


def test_against_sklearn_per_image():
    rng = np.random.default_rng(0)
    t = (rng.random((5, 12, 12)) > 0.6).astype(np.uint8)
    probs = rng.random((5, 12, 12)).astype(np.float32)
    pi = S.per_image_metrics(t, probs)
    for i in range(5):
        pred = (probs[i] >= 0.5).ravel()
        assert pi["dice"][i] == pytest.approx(skm.f1_score(t[i].ravel(), pred))
        assert pi["iou"][i] == pytest.approx(skm.jaccard_score(t[i].ravel(), pred))
        assert pi["precision"][i] == pytest.approx(skm.precision_score(t[i].ravel(), pred))
