"""Reading the saved artifacts a report is built from (never a model).

- ``RUN_DIR/results.csv``: flat records ``run_id, task, database, init, seed, fold, split,
  metric, value`` (:func:`read_results`; ``seed`` int or None, ``fold`` int/str or None,
  ``value`` float, NaN when undefined).
- ``RUN_DIR/runs/<run_id>/predictions_test.npz`` (classification: ``ids, patients, y_true,
  probs (N, 3)``) or ``per_image_test.csv`` (segmentation: ``id, patient, lesion`` or ``empty_gt``, ``dice, ...``),
  gathered per model into :class:`medssl.stats.estimands.Predictions` (:func:`read_predictions`).
- ``RUN_DIR/databases/<NAME>/{manifest.csv, database.json}`` (:func:`read_databases`).
- ``RUN_DIR/plan.json`` (:func:`read_plan`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medssl.artifacts import read_csv, read_json
from medssl.errors import DataError
from medssl.stats.estimands import Predictions, concat

RESULT_COLUMNS = ("run_id", "task", "database", "init", "seed", "fold", "split", "metric", "value")
PER_IMAGE_METRICS = ("dice", "iou", "pixel_accuracy", "precision", "recall", "hd", "hd95")

ModelKey = tuple[str, str, str]  # (task, database, init)


def _float(text: str) -> float:
    text = (text or "").strip()
    if text == "" or text.lower() in ("nan", "none", "null"):
        return float("nan")
    return float(text)


def _truthy(text: str) -> bool:
    return (text or "").strip().lower() in ("1", "1.0", "true", "yes")


def _is_normal(row: dict[str, str]) -> bool:
    """An image with an empty ground truth: ``empty_gt`` true, or ``lesion`` false
    (the column medssl.tasks.finetune writes)."""
    if "lesion" in row:
        return not _truthy(row["lesion"])
    return _truthy(row.get("empty_gt", ""))


def _opt_int(text: str) -> int | str | None:
    text = (text or "").strip()
    if text == "":
        return None
    try:
        return int(float(text))
    except ValueError:
        return text


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Parse a results.csv into records (dicts with the RESULT_COLUMNS keys)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            "results file missing; run `medssl benchmark` (or a fine-tune) first, or pass the "
            "benchmark folder that holds results.csv",
            file=str(path),
        )
    rows = read_csv(path)
    if rows:
        missing = [c for c in RESULT_COLUMNS if c not in rows[0]]
        if missing:
            raise DataError(
                f"missing column(s) {missing}; expected {list(RESULT_COLUMNS)}", file=str(path)
            )
    out = []
    for i, r in enumerate(rows, start=2):  # row 1 is the header
        try:
            value = _float(r["value"])
        except ValueError:
            raise DataError(
                f"value {r['value']!r} is not a number", file=str(path), row=i
            ) from None
        out.append(
            {
                "run_id": r["run_id"],
                "task": r["task"],
                "database": r["database"],
                "init": r["init"],
                "seed": _opt_int(r["seed"]),
                "fold": _opt_int(r["fold"]),
                "split": r["split"],
                "metric": r["metric"],
                "value": value,
            }
        )
    return out


@dataclass
class ModelPredictions:
    """Per-image test predictions of every model found, and notes on what was missing."""

    models: dict[ModelKey, Predictions] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def runs_of(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """run_id -> its identity (task, database, init, seed, fold), in first-appearance order."""
    runs: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["run_id"] not in runs:
            runs[r["run_id"]] = {k: r[k] for k in ("task", "database", "init", "seed", "fold")}
    return runs


def read_classification_predictions(path: Path, replicate: int) -> Predictions:
    """``predictions_test.npz`` -> Predictions with y_pred = argmax of probs."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ids = np.asarray(z["ids"]).astype(str)
            patients = np.asarray(z["patients"]).astype(str) if "patients" in z.files else ids
            y_true = np.asarray(z["y_true"]).astype(np.int64)
            probs = np.asarray(z["probs"], dtype=float)
    except KeyError as e:
        raise DataError(
            f"missing array {e}; expected ids, patients, y_true, probs", file=str(path)
        ) from None
    except ValueError as e:  # object arrays need pickle, which a report never unpickles
        raise DataError(
            f"cannot read ({e}); save ids and patients as str arrays (dtype '<U'), not objects",
            file=str(path),
        ) from None
    if probs.ndim != 2 or len(probs) != len(ids):
        raise DataError(
            f"probs has shape {probs.shape}; expected ({len(ids)}, n_classes)", file=str(path)
        )
    clusters = np.where(patients == "", ids, patients)
    return Predictions(
        ids=ids,
        clusters=clusters,
        replicate=np.full(len(ids), replicate, dtype=np.int64),
        y_true=y_true,
        y_pred=probs.argmax(axis=1),
    )


def read_segmentation_predictions(path: Path, replicate: int) -> Predictions:
    """``per_image_test.csv`` -> Predictions carrying the per-image metric columns present.

    Normal images (``lesion`` 0, or ``empty_gt`` 1) keep their place but their metrics are NaN.
    """
    rows = read_csv(path)
    if rows and "id" not in rows[0]:
        raise DataError(
            "missing column 'id'; expected id, patient, empty_gt, dice, iou, ...", file=str(path)
        )
    ids = np.array([r["id"] for r in rows], dtype=str)
    patients = np.array([r.get("patient") or r["id"] for r in rows], dtype=str)
    present = [m for m in PER_IMAGE_METRICS if rows and m in rows[0]]
    # the project's empty-mask policy (medssl.metrics.segmentation): per-image metrics are
    # averaged over lesion images only, so images with an empty ground truth count as undefined
    normal = np.array([_is_normal(r) for r in rows], dtype=bool)
    values = {}
    for m in present:
        try:
            v = np.array([_float(r[m]) for r in rows], dtype=float)
        except ValueError:
            raise DataError(
                f"column {m!r} holds a value that is not a number", file=str(path)
            ) from None
        values[m] = np.where(normal, np.nan, v)
    return Predictions(
        ids=ids,
        clusters=patients,
        replicate=np.full(len(ids), replicate, dtype=np.int64),
        values=values,
    )


def read_predictions(run_dir: str | Path, records: Sequence[dict[str, Any]]) -> ModelPredictions:
    """Test predictions of every run in ``records``, pooled per model (task, database, init).

    Folds of a seed are concatenated (each test image appears once per seed); seeds are kept
    apart as replicates. A run without its prediction file is left out with a note.
    """
    run_dir = Path(run_dir)
    parts: dict[ModelKey, list[Predictions]] = {}
    out = ModelPredictions()
    for run_id, run in runs_of(records).items():
        folder = run_dir / "runs" / run_id
        replicate = run["seed"] if isinstance(run["seed"], int) else 0
        if run["task"] == "classification":
            path = folder / "predictions_test.npz"
            reader = read_classification_predictions
        elif run["task"] == "segmentation":
            path = folder / "per_image_test.csv"
            reader = read_segmentation_predictions
        else:
            out.notes.append(f"run {run_id}: unknown task {run['task']!r}; no per-image statistics")
            continue
        if not path.is_file():
            out.notes.append(
                f"run {run_id}: {path.name} not found; left out of the bootstrap statistics"
            )
            continue
        parts.setdefault((run["task"], run["database"], run["init"]), []).append(
            reader(path, replicate)
        )
    for key, ps in parts.items():
        try:
            out.models[key] = concat(ps)
        except DataError as e:
            out.notes.append(f"{'/'.join(key)}: {e}")
    return out


@dataclass(frozen=True)
class DatabaseInfo:
    name: str
    path: Path
    meta: dict[str, Any]
    manifest: list[dict[str, str]]


def read_databases(folder: str | Path, order: Sequence[str] = ()) -> list[DatabaseInfo]:
    """Every ``<folder>/<NAME>/`` holding a manifest.csv; names in ``order`` first, others sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = {p.parent.name: p.parent for p in folder.glob("*/manifest.csv")}
    names = [n for n in order if n in found] + sorted(set(found) - set(order))
    out = []
    for name in names:
        path = found[name]
        meta_file = path / "database.json"
        meta = read_json(meta_file) if meta_file.is_file() else {}
        out.append(
            DatabaseInfo(name=name, path=path, meta=meta, manifest=read_csv(path / "manifest.csv"))
        )
    return out


def read_plan(path: str | Path) -> list[dict[str, Any]]:
    """plan.json as a list of run entries ([] when absent); accepts a list or ``{"runs": [...]}``."""
    path = Path(path)
    if not path.is_file():
        return []
    data = read_json(path)
    runs = data.get("runs", []) if isinstance(data, dict) else data
    if not isinstance(runs, list):
        raise DataError("expected a list of runs (or {'runs': [...]})", file=str(path))
    return [r for r in runs if isinstance(r, dict)]
