"""Label fractions (nested, stratified, patient-grouped, paired), frozen-encoder probes, and a
label-efficiency benchmark through the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from medssl.data.database import Database
from medssl.data.fractions import fraction_split, fraction_subsets
from medssl.errors import ConfigError

FRACTIONS = [0.1, 0.25, 0.5, 1.0]


def _pool(n_patients: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and patients of a split: 1-3 images per patient, imbalanced classes, a few
    patients with images of two classes."""
    rng = np.random.default_rng(seed)
    labels, patients = [], []
    for p in range(n_patients):
        c = int(rng.choice(3, p=[0.6, 0.3, 0.1]))
        for i in range(int(rng.integers(1, 4))):
            labels.append(c if i == 0 or p % 7 else (c + 1) % 3)
            patients.append(f"P{p}")
    return np.array(labels), np.array(patients)


def test_subsets_are_nested_stratified_and_patient_grouped():
    labels, patients = _pool()
    subsets = fraction_subsets(labels, patients, FRACTIONS, seed=(3, 0))
    assert np.array_equal(subsets[1.0], np.arange(len(labels)))
    for small, large in zip(FRACTIONS, FRACTIONS[1:], strict=False):
        assert set(subsets[small]) <= set(subsets[large])  # nested
        assert len(subsets[small]) < len(subsets[large])
    for f, idx in subsets.items():
        assert set(labels[idx]) == {0, 1, 2}  # every class, even at 10%
        inside = set(patients[idx])
        outside = set(patients[np.setdiff1d(np.arange(len(labels)), idx)])
        assert not inside & outside  # a patient is all in or all out
        for c in (0, 1, 2):  # stratified: each class near its share (patients of <= 3 images)
            share = (labels[idx] == c).sum() / (labels == c).sum()
            assert share == pytest.approx(f, abs=3.5 / (labels == c).sum() + 0.05)


def test_subsets_follow_the_seed_only():
    labels, patients = _pool()
    a = fraction_subsets(labels, patients, FRACTIONS, seed=(1, 0))
    b = fraction_subsets(labels, patients, [0.25], seed=(1, 0))  # one fraction asked alone
    c = fraction_subsets(labels, patients, FRACTIONS, seed=(2, 0))
    assert np.array_equal(a[0.25], b[0.25])
    assert not np.array_equal(a[0.25], c[0.25])  # another replicate, another subset


def test_a_class_that_is_no_patients_majority_is_kept():
    labels = np.array([0, 0, 1, 0, 0, 2, 1, 1])  # class 2 only beside two 0s of patient A
    patients = np.array(["A", "A", "B", "C", "C", "A", "D", "E"])
    for seed in range(5):
        for idx in fraction_subsets(labels, patients, [0.1, 0.5], seed=seed).values():
            assert set(labels[idx]) == {0, 1, 2}


@pytest.mark.parametrize("bad", [[], [0.0], [1.5], [-0.1, 0.5]])
def test_fractions_outside_zero_one_are_an_error(bad):
    labels, patients = _pool(10)
    with pytest.raises(ConfigError, match="label_fractions"):
        fraction_subsets(labels, patients, bad, seed=0)


def _memory_db() -> Database:
    rng = np.random.default_rng(0)
    n = 90
    split = ["train"] * 60 + ["val"] * 15 + ["test"] * 15
    labels = [i % 3 for i in range(n)]
    db = Database.from_arrays(
        pretrain=np.zeros((2, 8, 8)), pretrain_split=["train", "val"],
        finetune=rng.integers(0, 255, (n, 8, 8)), finetune_masks=np.zeros((n, 8, 8)),
        finetune_labels=labels, finetune_split=split,
    )  # fmt: skip
    for r in db.rows("finetune"):  # two images per patient
        r["patient"] = f"P{int(r['index']) // 2}"
    return db


def test_fraction_split_cuts_train_only_and_is_paired_across_inits():
    db = _memory_db()
    assert fraction_split(db, 1.0, seed=0) is None  # today's run: no override
    folds = ["train", "val", "test"] * 30
    assert fraction_split(db, 1.0, seed=0, base=folds) is folds
    full = {s: db.indices("finetune", s).tolist() for s in ("train", "val", "test")}
    quarter = fraction_split(db, 0.25, seed=0)
    half = fraction_split(db, 0.5, seed=0)
    assert quarter["val"] == full["val"] and quarter["test"] == full["test"]  # untouched
    assert set(quarter["train"]) < set(half["train"]) < set(full["train"])
    # the draw takes the replicate (seed, fold), never the init: asking again is the same
    assert fraction_split(db, 0.25, seed=0) == quarter
    assert fraction_split(db, 0.25, seed=1)["train"] != quarter["train"]
    fold0 = fraction_split(db, 0.5, seed=0, fold=0, base=folds)
    fold1 = fraction_split(db, 0.5, seed=0, fold=1, base=folds)
    assert fold0["val"] == [i for i, n in enumerate(folds) if n == "val"]
    assert set(fold0["train"]) < {i for i, n in enumerate(folds) if n == "train"}
    assert fold0["train"] != fold1["train"]
