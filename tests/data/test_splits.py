"""Split invariants: stratification, patients, seeds; k-fold assignment."""

from collections import Counter, defaultdict

import numpy as np
import pytest

from medssl.data.splits import kfold_assignments, stratified_group_split
from medssl.errors import ConfigError


def _data(n_patients=120, seed=0):
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for p in range(n_patients):
        cls = rng.choice(["normal", "benign", "malignant"], p=[0.1, 0.5, 0.4])
        for _ in range(rng.integers(1, 4)):
            labels.append(str(cls))
            groups.append(f"P{p}")
    return labels, groups


def test_stratified_grouped_deterministic():
    labels, groups = _data()
    parts = stratified_group_split(
        labels, groups, (0.6, 0.2, 0.2), ("train", "val", "test"), seed=7
    )
    again = stratified_group_split(
        labels, groups, (0.6, 0.2, 0.2), ("train", "val", "test"), seed=7
    )
    other = stratified_group_split(
        labels, groups, (0.6, 0.2, 0.2), ("train", "val", "test"), seed=8
    )
    assert parts == again and parts != other
    where = defaultdict(set)
    for g, p in zip(groups, parts):
        where[g].add(p)
    assert all(len(v) == 1 for v in where.values())
    n = Counter(parts)
    assert abs(n["train"] / len(parts) - 0.6) < 0.06 and abs(n["test"] / len(parts) - 0.2) < 0.06
    for cls in ("normal", "benign", "malignant"):
        total = labels.count(cls)
        in_test = sum(1 for c, p in zip(labels, parts) if c == cls and p == "test")
        assert abs(in_test / total - 0.2) < 0.08, cls


def test_pretrain_80_20_and_bad_fractions():
    labels, groups = _data(60)
    parts = stratified_group_split(labels, groups, (0.8, 0.2), ("train", "val"), seed=0)
    assert abs(parts.count("val") / len(parts) - 0.2) < 0.07
    with pytest.raises(ConfigError, match="sum to 1"):
        stratified_group_split(labels, groups, (0.5, 0.2), ("train", "val"), seed=0)


def test_kfold_every_item_once_and_grouped():
    labels, groups = _data(80)
    folds = kfold_assignments(labels, groups, 5, seed=1)
    assert set(folds.tolist()) == set(range(5))
    where = defaultdict(set)
    for g, f in zip(groups, folds):
        where[g].add(int(f))
    assert all(len(v) == 1 for v in where.values())
    assert (kfold_assignments(labels, groups, 5, seed=1) == folds).all()
