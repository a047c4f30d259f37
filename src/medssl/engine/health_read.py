"""The health read: does an encoder represent the finetuning classes better than the run's own
random-init encoder, by more than the reading's noise?

The read takes frozen features of every labelled image it may use (the finetuning train and
validation splits, never the test split: ``tasks.pretrain`` gathers them) and gives two
readings, each a **balanced accuracy** (the mean of per-class recalls: chance is 1/C whatever
the class balance, so a predictor of the majority class reads chance, not its frequency):

- **kNN**: leave-one-patient-out cosine kNN (Wu et al. 2018, InstDisc §3.4, the usual SSL
  monitor): every image is a query against all the others, its k nearest vote for its class
  with weights exp(cos / temperature); the image's own patient group (a published patient, or
  the image and its near-duplicates) never votes for it, so a near-duplicate cannot read as a
  learned neighbour. Written here because lightly's ``knn_predict`` ranks a separate bank and
  has no way to keep a query's own group out of its neighbours.
- **linear**: out-of-fold predictions of scikit-learn's ``LogisticRegression`` on
  standardised features, ``folds``-fold ``StratifiedGroupKFold`` over the same images (groups:
  patients), one fixed inverse regularisation ``c`` (one fit per fold keeps the read cheap).

Every image gets a prediction in both readings, so the read keeps each image's correctness,
and a trained encoder is compared with its random init **paired on the same images**:
``gain = BA(trained) - BA(random)``. Its standard error treats the images of a class as
independent draws and conditions on the two networks (and on the other images, which make
up each query's neighbours and each fold's training set; that dependence is ignored, so the
SE is approximate): with d_i the difference of image i's correctness (1, 0 or -1) and n_c the
images of class c among the C classes present,

    SE(gain)^2 = (1 / C^2) * sum_c var_c(d) / n_c,

``var_c`` the sample variance within class c (0 for a class of one image). ``se`` of a single
reading is the same formula on its correctness. Pairing removes what the two encoders share
(the images' difficulty), which the variance of two unpaired readings would count twice.
``beats(gain, se)``: ``gain > SE_MARGIN * se`` ("better than random init by more than 2 SE").

Undefined cases are NaN, never a silent pass: fewer than 2 images or 2 classes; a linear read
with fewer patient groups than 2 per fold.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SE_MARGIN = 2.0
"""A reading beats random init when its paired gain exceeds this many standard errors."""


@dataclass(frozen=True)
class Reading:
    """One reading (kNN or linear) of one encoder: balanced accuracy, its SE, and every
    image's correctness (bool (N,), in the order of the read's images)."""

    bacc: float
    se: float
    correct: np.ndarray


@dataclass(frozen=True)
class Gain:
    """A paired difference of two readings on the same images (trained minus random)."""

    gain: float
    se: float

    @property
    def beats(self) -> bool:
        return beats(self.gain, self.se)


def beats(gain: float, se: float, margin: float = SE_MARGIN) -> bool:
    """Whether ``gain`` exceeds ``margin`` standard errors (False when either is undefined)."""
    return bool(math.isfinite(gain) and math.isfinite(se) and gain > margin * se)


def balanced_accuracy(values: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(mean over classes of the per-class mean of ``values``, its SE) — the module's formula.

    values: (N,) per-image scores (correctness 0/1, or a paired difference -1/0/1);
    labels: (N,) int classes. NaN, NaN for an empty input.
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if values.size == 0 or classes.size == 0:
        return float("nan"), float("nan")
    means, var = [], 0.0
    for c in classes:
        v = values[labels == c]
        means.append(v.mean())
        var += (v.var(ddof=1) if v.size > 1 else 0.0) / v.size
    return float(np.mean(means)), float(math.sqrt(var) / classes.size)


def reading(correct: np.ndarray, labels: np.ndarray) -> Reading:
    """A Reading from per-image correctness (bool (N,)) and labels (N,)."""
    bacc, se = balanced_accuracy(correct.astype(np.float64), labels)
    return Reading(bacc, se, np.asarray(correct, dtype=bool))


def paired_gain(trained: Reading, random: Reading, labels: np.ndarray) -> Gain:
    """``trained`` minus ``random``, paired image by image (both read on the same images)."""
    if trained.correct.shape != random.correct.shape:
        raise ValueError(
            f"paired readings need the same images: {trained.correct.shape} vs "
            f"{random.correct.shape}"
        )
    if not (math.isfinite(trained.bacc) and math.isfinite(random.bacc)):
        return Gain(float("nan"), float("nan"))
    d = trained.correct.astype(np.float64) - random.correct.astype(np.float64)
    gain, se = balanced_accuracy(d, labels)
    return Gain(gain, se)


def loo_knn_predictions(
    features: torch.Tensor,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    k: int = 20,
    temperature: float = 0.07,
) -> np.ndarray:
    """Leave-one-group-out cosine kNN: (N,) predicted classes.

    features: (N, D); labels: (N,) int; groups: (N,) group ids (an image's own group never
    votes for it). Votes exp(cos / temperature) of the k most similar images of other groups
    (fewer when fewer exist); ties go to the lower class index.
    """
    z = F.normalize(features.float(), dim=1)  # (N, D)
    sim = z @ z.t()  # (N, N) cosine similarities
    g = torch.as_tensor(np.unique(np.asarray(groups), return_inverse=True)[1])
    sim = sim.masked_fill(g[:, None] == g[None, :], float("-inf"))  # own group out
    k = max(1, min(k, sim.shape[1]))
    top, idx = sim.topk(k, dim=1)  # (N, k)
    weights = (top / temperature).exp()  # exp(-inf) = 0: fewer than k neighbours
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    n_classes = int(y.max()) + 1 if y.numel() else 1
    votes = torch.zeros(sim.shape[0], n_classes, dtype=weights.dtype)
    votes.scatter_add_(1, y[idx], weights)  # (N, C)
    return votes.argmax(dim=1).numpy()


def linear_predictions(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    c: float = 0.1,
    folds: int = 5,
    seed: int = 0,
    max_iter: int = 1000,
) -> np.ndarray | None:
    """Out-of-fold predictions (N,) of a standardised logistic regression under patient-grouped
    stratified K-fold; None when the images cannot be split (fewer than 2 groups or classes)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    n_groups = np.unique(np.asarray(groups)).size
    n_splits = min(folds, n_groups, int(np.bincount(labels).max(initial=0)))
    if n_splits < 2 or np.unique(labels).size < 2:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a class rarer than the folds: sklearn says so per call
        warnings.simplefilter("ignore", UserWarning)
        return cross_val_predict(model, features, labels, groups=groups, cv=cv)


@dataclass(frozen=True)
class HealthRead:
    """The kNN and linear readings of one encoder on the read's images."""

    knn: Reading
    linear: Reading

    def gains(self, random: HealthRead, labels: np.ndarray) -> tuple[Gain, Gain]:
        """(kNN gain, linear gain) of this encoder over ``random``, paired on the images."""
        return paired_gain(self.knn, random.knn, labels), paired_gain(
            self.linear, random.linear, labels
        )


def read_features(
    features: torch.Tensor,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    k: int = 20,
    temperature: float = 0.07,
    c: float = 0.1,
    folds: int = 5,
    seed: int = 0,
) -> HealthRead:
    """Both readings of ``features`` (N, D) of the read's images (labels, groups: (N,))."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    nan = Reading(float("nan"), float("nan"), np.zeros(n, dtype=bool))
    if n < 2 or np.unique(labels).size < 2:
        return HealthRead(nan, nan)
    knn = loo_knn_predictions(features, labels, groups, k=k, temperature=temperature)
    lin = linear_predictions(
        features.float().cpu().numpy(), labels, groups, c=c, folds=folds, seed=seed
    )
    return HealthRead(
        reading(knn == labels, labels),
        nan if lin is None else reading(lin == labels, labels),
    )
