"""Label fractions: nested, class-stratified, patient-grouped subsets of a training split.

A label-efficiency curve fine-tunes (or probes) on a fraction of the labelled training images
(Ellis et al. 2025 report BUSI at 20% and 50% of its labels). For the curve to compare
initialisations and fractions fairly the subsets must be:

- **patient-grouped**: a patient's images are all in or all out (no patient straddles the
  subset and what was left out, as no patient straddles train and test: data/splits.py);
- **stratified by class** with **at least one image of every class** the split holds, so a
  10% subset of a 3-class split is still a 3-class problem;
- **nested**: the 10% subset lies inside the 25% one, which lies inside the 50% one, so a curve
  that rises with the fraction measures more labels, not other labels;
- **drawn from a seed**, once per replicate, and **the same for every initialisation** (the
  caller passes the replicate's seed, never the init), so pretrained and random-init runs of a
  replicate train on the same images and stay paired.

Design (:func:`fraction_subsets`): every patient gets one stratum, the majority class of its
images (a tie goes to the class with fewer training images, the one a subset would lose
first). One seeded permutation ranks the patients of each stratum; a fraction ``f`` takes,
per stratum, the shortest prefix of that ranking holding at least ``round(f * n_s)`` images
(``n_s``: the stratum's images; at least one patient). Prefixes of one ranking are nested by
construction. A class that is no patient's majority (it only appears beside another class in
multi-class patients) gets an *anchor*: the first patient, in a seeded ranking of all
patients, that has an image of it; anchors are in every fraction (so nesting holds), a small
surplus at the smallest fractions, reported by the subset sizes. ``f = 1`` is the whole split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medssl.data.database import Database
from medssl.data.manifest import SPLITS
from medssl.errors import ConfigError

FINETUNE_SPLITS: tuple[str, ...] = SPLITS["finetune"]  # train, val, test

FRACTION_STREAM = 0x1AB
"""First word of the seed sequence of the subset draw, so that it shares no stream with the
splits, folds or training of the same seed."""


def check_fractions(fractions: Sequence[float], *, where: str = "label_fractions") -> list[float]:
    """``fractions`` as sorted unique floats, each in (0, 1]; else a ConfigError."""
    out = sorted({float(f) for f in fractions})
    bad = [f for f in out if not 0.0 < f <= 1.0]
    if not out or bad:
        raise ConfigError(
            f"{where}: expected a non-empty list of fractions in (0, 1], e.g. [0.1, 0.25, 0.5, "
            f"1.0]; got {list(fractions)}"
        )
    return out


def fraction_subsets(
    labels: Sequence[int] | np.ndarray,
    patients: Sequence[str] | np.ndarray,
    fractions: Sequence[float],
    seed: int | Sequence[int],
) -> dict[float, np.ndarray]:
    """Nested, stratified, patient-grouped subsets of a split (design: module docstring).

    labels: (N,) class of each image; patients: (N,) patient of each image (an image without
    a known patient is its own patient: pass its id); fractions: each in (0, 1]; seed: an int
    or a sequence of ints (e.g. ``(seed, fold)``) seeding the patient rankings. Returns
    fraction -> sorted int64 indices into the N images. The same arguments give the same
    subsets; fraction 1.0 gives ``arange(N)``.
    """
    labels = np.asarray(labels)
    patients = np.asarray(patients).astype(str)
    if labels.shape != patients.shape or labels.ndim != 1:
        raise ConfigError(
            f"fraction_subsets: labels {labels.shape} and patients {patients.shape} must be "
            "two (N,) arrays"
        )
    fracs = check_fractions(fractions)
    words = [FRACTION_STREAM, *([seed] if isinstance(seed, (int, np.integer)) else seed)]
    rng = np.random.default_rng([int(w) for w in words])
    names, codes = np.unique(patients, return_inverse=True)
    classes, class_counts = np.unique(labels, return_counts=True)
    rarity = {c: n for c, n in zip(classes.tolist(), class_counts.tolist(), strict=True)}
    members = [np.flatnonzero(codes == p) for p in range(len(names))]
    stratum = np.empty(len(names), dtype=labels.dtype)
    for p, rows in enumerate(members):
        vals, counts = np.unique(labels[rows], return_counts=True)
        best = [v for v, n in zip(vals.tolist(), counts.tolist(), strict=True) if n == counts.max()]
        stratum[p] = min(best, key=lambda c: (rarity[c], c))
    order = rng.permutation(len(names))  # one ranking of every patient
    anchors = set()
    for c in classes.tolist():
        if c in stratum:
            continue
        anchors.add(next(int(p) for p in order if c in labels[members[p]]))
    out: dict[float, np.ndarray] = {}
    for f in fracs:
        chosen = set(anchors)
        for s in np.unique(stratum).tolist():
            ranked = [int(p) for p in order if stratum[p] == s]
            n_s = sum(len(members[p]) for p in ranked)
            target = max(1, int(np.floor(f * n_s + 0.5)))
            taken = 0
            for p in ranked:
                if taken >= target:
                    break
                chosen.add(p)
                taken += len(members[p])
        idx = np.concatenate([members[p] for p in sorted(chosen)]) if chosen else np.zeros(0)
        out[f] = np.sort(idx.astype(np.int64))
    return out


def fraction_split(
    db: Database,
    fraction: float,
    seed: int,
    *,
    fold: int | None = None,
    base: Sequence[str] | None = None,
) -> dict[str, list[int]] | Sequence[str] | None:
    """The ``split_override`` (:func:`medssl.data.labelled.finetune_splits`) of one replicate
    at one label fraction: the train split cut to its ``fraction`` subset, val and test as
    they are.

    ``base``: one split name per finetuning row (a fold of K-fold CV), None for the
    database's split column. ``seed`` and ``fold`` (the replicate, never the initialisation)
    seed the draw. Fraction 1.0 returns ``base`` unchanged (the run is today's run);
    otherwise ``{"train": rows, "val": rows, "test": rows}`` of ``finetune.npy``, the train
    rows outside the subset in no split.
    """
    rows = db.rows("finetune")
    names = [r.split for r in rows] if base is None else [str(n) for n in base]
    if len(names) != len(rows):
        raise ConfigError(
            f"fraction_split: {len(names)} split names for the {len(rows)} finetuning rows of "
            f"database {db.name!r}"
        )
    (fraction,) = check_fractions([fraction], where="label fraction")
    if fraction == 1.0:
        return base
    by_split = {
        s: [r.index for r, n in zip(rows, names, strict=True) if n == s] for s in FINETUNE_SPLITS
    }
    train = [r for r, n in zip(rows, names, strict=True) if n == "train"]
    labels = [r.label for r in train]
    patients = [r.patient for r in train]
    words = (seed,) if fold is None else (seed, fold + 1)
    keep = fraction_subsets(labels, patients, [fraction], words)[fraction]
    by_split["train"] = [train[i].index for i in keep]
    return by_split
