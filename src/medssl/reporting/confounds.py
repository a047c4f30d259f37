"""Confounds of a database whose finetuning images come from several sources.

MG2 takes every CBIS-DDSM finetuning image as malignant and the other classes from INbreast, so
a classifier that only recognises the scanner scores MCC 0.447 there (the thesis's best MG2
model scored 0.440). Two reads make such shortcuts visible, both from saved predictions alone:

- the *source-only shortcut* (:data:`SHORTCUT`): the class predicted from the source alone,
  fitted on each run's training split — the majority class of each source (ties: the lower
  class index); a source absent from the training split gets the split's majority class. It is
  scored like a model on the same splits (its own rows in the result tables) and every model of
  the database is compared with it;
- per-source metrics of every model on the test split (:func:`per_source_table`).

Both need each prediction row's source (``sources`` in ``predictions_<split>.npz``, ``source``
in ``per_image_<split>.csv``; older runs: the manifest's source of each file).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medssl.data.records import CLASSES
from medssl.metrics.classification import classification_metrics
from medssl.reporting.inputs import ModelKey, runs_of
from medssl.reporting.tables import Table, decimals_for, fmt_number, metric_label
from medssl.stats.estimands import Predictions, concat, statistic

SHORTCUT = "source shortcut"
"""The init name of the source-only shortcut in records, tables and comparisons."""


def mixes_sources(pred: Predictions) -> bool:
    """Whether the rows come from two or more sources (False when sources are unknown)."""
    return pred.strata is not None and len(set(pred.strata.tolist())) > 1


def fit_shortcut(sources: np.ndarray, labels: np.ndarray) -> tuple[dict[str, int], int]:
    """(source -> majority class, overall majority class) of a training split.

    sources: (N,) str; labels: (N,) int class indices. Ties go to the lower class index.
    """
    k = len(CLASSES)
    default = int(np.bincount(labels, minlength=k).argmax()) if len(labels) else 0
    table = {
        s: int(np.bincount(labels[sources == s], minlength=k).argmax())
        for s in sorted(set(sources.tolist()))
    }
    return table, default


def apply_shortcut(rule: tuple[dict[str, int], int], pred: Predictions) -> Predictions:
    """``pred`` with its predicted classes replaced by the shortcut's (needs strata)."""
    table, default = rule
    y = np.array([table.get(s, default) for s in pred.strata.tolist()], dtype=np.int64)
    return dataclasses.replace(pred, y_pred=y)


def shortcut_runs(
    train: Mapping[str, Predictions],
    splits: Mapping[str, Mapping[str, Predictions]],
    records: Sequence[Mapping[str, Any]],
    baseline: str,
) -> tuple[list[dict[str, Any]], dict[ModelKey, Predictions]]:
    """Records (train/val/test) and pooled test predictions of the shortcut, one pseudo-run per
    classification run of ``baseline`` on a database whose test rows mix sources.

    train: run_id -> training-split predictions (labels and sources); splits: split name ->
    run_id -> predictions of that split.
    """
    out_records: list[dict[str, Any]] = []
    parts: dict[ModelKey, list[Predictions]] = {}
    for run_id, run in runs_of(records).items():
        if run["task"] != "classification" or run["init"] != baseline:
            continue
        test = splits.get("test", {}).get(run_id)
        tr = train.get(run_id)
        if test is None or tr is None or tr.strata is None or not mixes_sources(test):
            continue
        rule = fit_shortcut(tr.strata, tr.y_true)
        facts = {k: run[k] for k in ("task", "database", "seed", "fold")}
        facts.update(run_id=f"{run_id}:shortcut", init=SHORTCUT)
        for split, by_run in splits.items():
            pred = by_run.get(run_id)
            if pred is None or pred.strata is None:
                continue
            short = apply_shortcut(rule, pred)
            probs = np.eye(len(CLASSES))[short.y_pred]
            metrics = classification_metrics(short.y_true, probs)
            metrics["loss"] = float("nan")  # a hard rule has no calibrated probabilities
            out_records += [
                {**facts, "split": split, "metric": m, "value": float(v)}
                for m, v in metrics.items()
            ]
            if split == "test":
                parts.setdefault(("classification", run["database"], SHORTCUT), []).append(short)
    return out_records, {key: concat(ps) for key, ps in parts.items()}


PER_SOURCE_METRICS = {
    "classification": ("accuracy", "mcc"),
    "segmentation": ("dice", "missed"),
}


def per_source_table(models: Mapping[ModelKey, Predictions], task: str) -> Table:
    """Every ``task`` model's test metrics per source, for databases whose test rows mix
    sources. Estimates: the mean over seeds of the metric on that seed's test rows of the
    source (``missed``: the fraction of the source's lesion images with an empty prediction)."""
    metrics = PER_SOURCE_METRICS[task]
    rows = []
    for (t, db, init), pred in models.items():
        if t != task or not mixes_sources(pred):
            continue
        for source in sorted(set(pred.strata.tolist())):
            part = pred.take(np.flatnonzero(pred.strata == source))
            cells = [task, db, init, source, str(len(set(part.ids.tolist())))]
            if part.y_true is not None:
                cells.append(", ".join(CLASSES[c] for c in sorted(set(part.y_true.tolist()))))
            for m in metrics:
                value = (
                    float(statistic(part, m, np.ones((1, len(part))))[0])
                    if m in part.metrics
                    else float("nan")
                )
                cells.append(fmt_number(value, decimals_for(m)))
            rows.append(tuple(cells))
    extra = ("classes",) if task == "classification" else ()
    columns = ("task", "database", "init", "source", "test images", *extra)
    columns += tuple("missed fraction" if m == "missed" else metric_label(m) for m in metrics)
    return Table(
        name=f"table_per_source_{task}",
        title=f"{task.capitalize()}: test metrics per source (databases that mix sources)",
        columns=columns,
        rows=tuple(rows),
        notes=(
            "Mean over seeds of each metric on the source's test images. On a source with "
            "one class MCC is 0 whatever the model does: read its accuracy. Missed fraction: "
            "lesion images with an empty prediction."
        ),
    )
