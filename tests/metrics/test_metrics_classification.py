"""Known-answer and scikit-learn cross-checks for medssl.metrics.classification."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.metrics import matthews_corrcoef

from medssl.metrics import classification as C


def _onehot_probs(pred, k=3, hi=0.8):
    probs = np.full((len(pred), k), (1 - hi) / (k - 1))
    probs[np.arange(len(pred)), pred] = hi
    return probs


def _random_case(seed=0, n=60):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs


def test_confusion_matrix_hand_case():
    cm = C.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2])
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_sens_spec_hand_case():
    cm = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    sens, spec = C.sensitivity_specificity(cm)
    np.testing.assert_allclose(sens, [1 / 2, 1 / 1, 2 / 3])
    # normal: tn = 1+0+0+2 = 3, fp = 1 -> 3/4; benign: tn = 4, fp = 1 -> 4/5; malignant: tn = 3, fp 0
    np.testing.assert_allclose(spec, [3 / 4, 4 / 5, 1.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn(seed):
    y, probs = _random_case(seed)
    pred = probs.argmax(1)
    m = C.classification_metrics(y, probs)
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["loss"] == pytest.approx(skm.log_loss(y, probs, labels=[0, 1, 2]), rel=1e-6)
    assert m["auroc_macro"] == pytest.approx(
        skm.roc_auc_score(y, probs, multi_class="ovr", average="macro")
    )
    ap = [skm.average_precision_score(y == k, probs[:, k]) for k in range(3)]
    assert m["ap_macro"] == pytest.approx(np.mean(ap))
    recall = skm.recall_score(y, pred, average=None)
    for k, name in enumerate(("normal", "benign", "malignant")):
        assert m[f"sensitivity_{name}"] == pytest.approx(recall[k])
        spec = skm.recall_score(y != k, pred != k)
        assert m[f"specificity_{name}"] == pytest.approx(spec)
    cm = skm.confusion_matrix(y, pred, labels=[0, 1, 2])
    assert m["confusion_malignant_normal"] == cm[2, 0]


def test_perfect_and_fully_wrong():
    y = np.array([0, 1, 2, 0, 1, 2])
    perfect = C.classification_metrics(y, _onehot_probs(y))
    assert perfect["mcc"] == 1.0 and perfect["accuracy"] == 1.0 and perfect["auroc_macro"] == 1.0
    assert perfect["expected_cost"] == 0.0 and perfect["ap_macro"] == 1.0
    wrong = C.classification_metrics(y, _onehot_probs((y + 1) % 3))
    assert wrong["accuracy"] == 0.0 and wrong["balanced_accuracy"] == 0.0
    assert wrong["mcc"] == pytest.approx(skm.matthews_corrcoef(y, (y + 1) % 3))
    assert wrong["mcc"] < 0


def test_auroc_is_an_area_not_balanced_accuracy():
    # Binary-like case where ranking is perfect but the argmax is not: AUROC 1, BA < 1.
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1, 0], [0.6, 0.4, 0], [0.55, 0.45, 0], [0.2, 0.8, 0]])
    auc = C.auroc_per_class(y, probs)
    assert auc[0] == 1.0 and auc[1] == 1.0 and math.isnan(auc[2])


def test_missing_class_is_undefined_not_zero_or_crash():
    y = np.array([0, 0, 1, 1, 0])  # no malignant image in this split
    probs = _onehot_probs(np.array([0, 1, 1, 1, 2]))
    m = C.classification_metrics(y, probs)
    assert math.isnan(m["sensitivity_malignant"])
    assert math.isnan(m["auroc_malignant"]) and math.isnan(m["auroc_macro"])
    assert math.isnan(m["ap_malignant"]) and math.isnan(m["ap_macro"])
    assert math.isnan(m["balanced_accuracy"])
    # empirical priors give the absent class weight 0, so EC stays defined ...
    assert m["expected_cost"] == pytest.approx(2 / 5)  # two false alarms, cost 1 each
    # ... but with explicit priors that weigh it, P(pred | malignant) is undefined
    cm = C.confusion_matrix(y, probs.argmax(1))
    assert math.isnan(C.expected_cost(cm, priors=[1 / 3, 1 / 3, 1 / 3])[0])
    assert not math.isnan(m["mcc"]) and not math.isnan(m["f1_weighted"])
    assert m["specificity_malignant"] == pytest.approx(4 / 5)


def test_constant_prediction_mcc_is_zero():
    """A constant predictor carries no information: MCC 0 (scikit-learn's convention), so a
    mean over seeds counts it. Seeds at 0.344, 0.360 and one constant predictor average 0.235;
    a NaN left out of the mean would have read 0.352."""
    y = np.array([0, 1, 2])
    m = C.classification_metrics(y, _onehot_probs(np.array([0, 0, 0])))
    assert m["mcc"] == 0.0 == matthews_corrcoef(y, [0, 0, 0])
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert C.mcc(C.confusion_matrix([1, 1], [1, 1])) == 0.0  # a single true class
    assert math.isnan(C.mcc(np.zeros((3, 3))))  # an empty split
    assert np.mean([0.344, 0.360, m["mcc"]]) == pytest.approx(0.2347, abs=1e-4)


def test_expected_cost_hand_case():
    cm = np.array([[2, 0, 0], [0, 2, 0], [1, 0, 1]])  # one malignant called normal
    ec, ec_norm = C.expected_cost(cm)
    assert ec == pytest.approx(10 / 6)
    # priors (1/3 each); always-normal costs (0+1+10)/3, always-benign (1+0+5)/3, always-malignant 2/3
    assert ec_norm == pytest.approx((10 / 6) / (2 / 3))
    ec2, _ = C.expected_cost(cm, cost_matrix=np.ones((3, 3)) - np.eye(3))
    assert ec2 == pytest.approx(1 / 6)  # 0-1 costs: the error rate
    with pytest.raises(ValueError, match="cost matrix"):
        C.expected_cost(cm, cost_matrix=np.ones((2, 2)))


def test_shape_errors_name_the_problem():
    with pytest.raises(ValueError, match="probs must be"):
        C.classification_metrics(np.array([0, 1]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="outside"):
        C.confusion_matrix([0, 3], [0, 1])
