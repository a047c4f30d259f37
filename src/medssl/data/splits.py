"""Stratified, patient-grouped, seeded splits (scikit-learn's StratifiedGroupKFold).

A split of fractions such as 60/20/20 is made from K = 5 stratified group folds: folds are
dealt to the parts in proportion (3 train, 1 val, 1 test). Groups are patient ids (one group
per image where none is published), so a patient never spans two parts; the same seed gives
the same assignment. ``kfold_assignments`` gives the benchmark's repeated K-fold CV, and
refuses a class with fewer images than folds (the builder refuses the same for a recipe's
finetuning split, :func:`medssl.data.build.build_database`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from medssl.errors import ConfigError


def folds_for(fractions: Sequence[float]) -> list[int]:
    """Number of folds per part, e.g. (0.6, 0.2, 0.2) -> [3, 1, 1]; (0.8, 0.2) -> [4, 1]."""
    fr = [Fraction(f).limit_denominator(20) for f in fractions]
    if sum(fr) != 1 or any(f <= 0 for f in fr):
        raise ConfigError(f"split fractions {list(fractions)} must be positive and sum to 1")
    denom = int(np.lcm.reduce([f.denominator for f in fr]))
    return [int(f * denom) for f in fr]


def stratified_group_split(
    labels: Sequence[int | str],
    groups: Sequence[str],
    fractions: Sequence[float],
    names: Sequence[str],
    seed: int,
) -> list[str]:
    """Assign each item a part name.

    labels: (N,) class of each item; groups: (N,) patient id of each item.
    Returns (N,) part names, stratified by label, whole groups per part, deterministic in seed.
    """
    if len(fractions) != len(names):
        raise ConfigError(
            f"{len(fractions)} split fractions for {len(names)} split names {list(names)}"
        )
    n = len(labels)
    if n == 0:
        return []
    per_part = folds_for(fractions)
    k = sum(per_part)
    fold_of = _fold_index(labels, groups, k, seed)
    part_of_fold = np.repeat(np.arange(len(names)), per_part)
    return [names[part_of_fold[f]] for f in fold_of]


def kfold_assignments(
    labels: Sequence[int | str], groups: Sequence[str], k: int, seed: int, *, where: str = ""
) -> np.ndarray:
    """(N,) fold index in [0, k) of each item, stratified and patient-grouped.

    Every class needs at least ``k`` items, one per test fold: fewer is a ConfigError that
    names the class, its count and what to do (``where`` names the database).
    """
    if k < 2:
        raise ConfigError(f"--folds must be at least 2, got {k}")
    counts = Counter(str(x) for x in labels)
    thin = {c: n for c, n in sorted(counts.items()) if n < k}
    if thin:
        text = ", ".join(f"{c} has {n}" for c, n in thin.items())
        db = f" of database {where}" if where else ""
        raise ConfigError(
            f"--folds {k}: every class needs at least {k} finetuning images (one per test fold), "
            f"but in the finetuning pool{db} {text}; use --folds {max(2, min(thin.values()))} or "
            "fewer, or build the database with larger quotas for those classes"
        )
    return _fold_index(labels, groups, k, seed)


def _fold_index(labels, groups, k: int, seed: int) -> np.ndarray:
    labels = np.asarray([str(x) for x in labels])
    groups = np.asarray([str(g) for g in groups])
    n = len(labels)
    n_groups = len(set(groups.tolist()))
    fold_of = np.zeros(n, dtype=np.int64)
    if n_groups < k:
        # Too few patients for k folds: deal groups round-robin in a seeded order.
        order = np.random.default_rng(seed).permutation(sorted(set(groups.tolist())))
        where = {g: i % k for i, g in enumerate(order)}
        return np.array([where[g] for g in groups], dtype=np.int64)
    if all(n < k for n in Counter(labels.tolist()).values()):
        labels = np.zeros(n, dtype=str)  # no class fills k folds: stratifying is moot
    # sklearn warns when a class has fewer members than k; the assignment is still valid.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        for f, (_, test) in enumerate(cv.split(np.zeros(n), labels, groups)):
            fold_of[test] = f
    return fold_of
