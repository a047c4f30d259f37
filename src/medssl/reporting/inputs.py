# Over 400 lines: one reader per artifact a report reads, each held to its writer's format.
"""Reading the saved artifacts a report is built from (never a model).

- ``RUN_DIR/results.csv``: flat records ``run_id, task, database, init, seed, fold, split,
  metric, value`` and, in a benchmark's, ``evaluation, fraction, pretrain_data``
  (:func:`read_results`; ``seed`` int or None, ``fold`` int/str or None, ``value`` float,
  NaN when undefined;
  ``evaluation`` "finetune", ``fraction`` 1.0 and ``pretrain_data`` "" (the record's own
  database) where the file has no such columns).
- ``RUN_DIR/runs/<run_id>/predictions_<split>.npz`` (classification: ``ids, patients,
  sources, y_true, probs (N, 3)``) or ``per_image_<split>.csv`` (segmentation: ``id, patient,
  source, lesion``, the per-image metrics), gathered per model into
  :class:`medssl.stats.estimands.Predictions` (:func:`read_predictions`); ``sources`` /
  ``source`` (older runs lack them) become the rows' strata, else the database manifest's
  source of each file when it is unique.
- ``RUN_DIR/databases/<NAME>/{manifest.csv, database.json}`` (:func:`read_databases`).
- ``RUN_DIR/plan.json`` (:func:`read_plan`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medssl.artifacts import read_csv, read_json
from medssl.data.database import MANIFEST_FILE, META_FILE
from medssl.errors import DataError
from medssl.metrics.segmentation import PER_IMAGE_METRICS, SCALED_DISTANCES
from medssl.runfiles import (
    BEST,
    DONE,
    PLAN,
    RESULT_COLUMNS,
    RESULT_DEFAULTS,
    RESULTS,
    RUNS,
    per_image_file,
    predictions_file,
)
from medssl.stats.estimands import Predictions, concat

ModelKey = tuple[str, str, str]  # (task, database, init)


def _float(text: str) -> float:
    text = (text or "").strip()
    if text == "" or text.lower() in ("nan", "none", "null"):
        return float("nan")
    return float(text)


def _truthy(text: str) -> bool:
    return (text or "").strip().lower() in ("1", "1.0", "true", "yes")


def _is_normal(row: dict[str, str]) -> bool:
    """An image with an empty ground truth (``lesion`` 0, the column fine-tuning writes)."""
    if "lesion" not in row:
        raise DataError("missing column 'lesion' (1 = the ground truth mask is not empty)")
    return not _truthy(row["lesion"])


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
        try:
            fraction = float(r.get("fraction") or RESULT_DEFAULTS["fraction"])
        except ValueError:
            raise DataError(
                f"fraction {r['fraction']!r} is not a number", file=str(path), row=i
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
                "evaluation": r.get("evaluation") or RESULT_DEFAULTS["evaluation"],
                "fraction": fraction,
                "pretrain_data": r.get("pretrain_data") or RESULT_DEFAULTS["pretrain_data"],
            }
        )
    return out


BENCHMARK_HINT = "pass a benchmark folder (the --out of `medssl benchmark`)"


def check_benchmark_folder(path: Path) -> Path:
    """``path`` if a benchmark report can be built from it (it holds ``results.csv`` and is not
    one run's folder), else a DataError that says what the folder is and what to pass.

    One run's folder is recognised by the ``done.json`` that `medssl pretrain` and
    `medssl finetune` write at its root; a benchmark writes ``plan.json`` there instead (and
    keeps its runs' ``done.json`` in ``runs/<id>/``).
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"no such folder; {BENCHMARK_HINT}", file=str(path))
    if (path / DONE).is_file() and not (path / PLAN).is_file():
        if (path / RESULTS).is_file() or (path / BEST).is_file():
            kind = (
                "a fine-tuning run folder (from `medssl finetune`; its metrics are its results.csv)"
            )
        else:
            kind = "a pretraining run folder (from `medssl pretrain`; it has no results to report)"
        parent = path.parent.parent
        owner = (
            f"; this run belongs to the benchmark {parent}: `medssl report {parent}`"
            if path.parent.name == RUNS and (parent / PLAN).is_file()
            else ""
        )
        raise DataError(f"{kind}, not a benchmark folder; {BENCHMARK_HINT}{owner}", file=str(path))
    if not (path / RESULTS).is_file():
        started = (path / PLAN).is_file()
        raise DataError(
            "no results.csv: no run of this benchmark has finished yet; rerun `medssl "
            "benchmark` with the same --out"
            if started
            else f"no results.csv: not a benchmark folder; {BENCHMARK_HINT}",
            file=str(path),
        )
    return path


def is_in_domain(record: Mapping[str, Any]) -> bool:
    """A record of random init or of an encoder pretrained on the record's own database."""
    return record.get("pretrain_data", "") in ("", record["database"])


def is_thesis_record(record: Mapping[str, Any]) -> bool:
    """A record of fine-tuning on the whole train split from random init or an encoder
    pretrained on the same database: what the thesis's tables and the report's main
    comparisons are about (label fractions, probes and transfer have their own sections)."""
    return (
        record.get("evaluation", RESULT_DEFAULTS["evaluation"]) == RESULT_DEFAULTS["evaluation"]
        and float(record.get("fraction", 1.0)) == 1.0
        and is_in_domain(record)
    )


@dataclass
class ModelPredictions:
    """Per-image predictions of one split for every model found (pooled over its runs) and
    for every run, and notes on what was missing."""

    models: dict[ModelKey, Predictions] = field(default_factory=dict)
    runs: dict[str, Predictions] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def runs_of(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """run_id -> its identity (task, database, init, seed, fold), in first-appearance order."""
    runs: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["run_id"] not in runs:
            runs[r["run_id"]] = {k: r[k] for k in ("task", "database", "init", "seed", "fold")}
    return runs


SIZE_METRIC = {"classification": "n", "segmentation": "n_images"}
"""The record that holds a split's image count, per task (for the corrected CV variance)."""


def run_values(
    records: Sequence[Mapping[str, Any]], key: ModelKey, metric: str, split: str = "test"
) -> dict[tuple[int, int], float]:
    """(seed, fold) -> ``metric`` of ``split`` for every run of model ``key`` (fold 0 when none)."""
    task, db, init = key
    out = {}
    for r in records:
        if (r["task"], r["database"], r["init"], r["split"], r["metric"]) == (
            task,
            db,
            init,
            split,
            metric,
        ):
            seed = r["seed"] if isinstance(r["seed"], int) else 0
            fold = r["fold"] if isinstance(r["fold"], int) else 0
            out[(seed, fold)] = float(r["value"])
    return out


def folds_of(records: Sequence[Mapping[str, Any]], key: ModelKey) -> int | None:
    """The number of CV folds of model ``key``'s runs, or None (one split)."""
    task, db, init = key
    folds = {
        r["fold"]
        for r in records
        if (r["task"], r["database"], r["init"]) == (task, db, init) and r["fold"] is not None
    }
    return len(folds) or None


def split_sizes(records: Sequence[Mapping[str, Any]], key: ModelKey) -> tuple[float, float]:
    """Mean (train, test) image counts over model ``key``'s runs (NaN when not recorded)."""
    metric = SIZE_METRIC.get(key[0], "n")
    sizes = []
    for split in ("train", "test"):
        v = list(run_values(records, key, metric, split).values())
        sizes.append(float(np.mean(v)) if v else float("nan"))
    return sizes[0], sizes[1]


def read_classification_predictions(path: Path, replicate: int) -> Predictions:
    """``predictions_<split>.npz`` -> Predictions with y_pred = argmax of probs."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ids = np.asarray(z["ids"]).astype(str)
            patients = np.asarray(z["patients"]).astype(str) if "patients" in z.files else ids
            sources = np.asarray(z["sources"]).astype(str) if "sources" in z.files else None
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
        strata=sources if sources is not None and len(sources) == len(ids) else None,
    )


def read_segmentation_predictions(path: Path, replicate: int) -> Predictions:
    """``per_image_<split>.csv`` -> Predictions carrying the per-image metric columns present
    (and ``missed``, 1 for a lesion image with an empty prediction).

    Normal images (``lesion`` 0) keep their place but their metrics are NaN.
    """
    rows = read_csv(path)
    if rows and "id" not in rows[0]:
        raise DataError(
            "missing column 'id'; expected id, patient, lesion, dice, iou, ...", file=str(path)
        )
    ids = np.array([r["id"] for r in rows], dtype=str)
    patients = np.array([r.get("patient") or r["id"] for r in rows], dtype=str)
    present = [
        m for m in (*PER_IMAGE_METRICS, *SCALED_DISTANCES, "missed") if rows and m in rows[0]
    ]
    # the project's empty-mask policy (medssl.metrics.segmentation): per-image metrics are
    # averaged over lesion images only, so images with an empty ground truth count as undefined
    try:
        normal = np.array([_is_normal(r) for r in rows], dtype=bool)
    except DataError as e:
        raise DataError(e.reason, file=str(path)) from None
    values = {}
    for m in present:
        try:
            v = np.array([_float(r[m]) for r in rows], dtype=float)
        except ValueError:
            raise DataError(
                f"column {m!r} holds a value that is not a number", file=str(path)
            ) from None
        values[m] = np.where(normal, np.nan, v)
    sources = np.array([r.get("source", "") for r in rows], dtype=str)
    return Predictions(
        ids=ids,
        clusters=patients,
        replicate=np.full(len(ids), replicate, dtype=np.int64),
        values=values,
        strata=sources if rows and "source" in rows[0] else None,
    )


def read_predictions(
    run_dir: str | Path,
    records: Sequence[dict[str, Any]],
    *,
    split: str = "test",
    manifests: dict[str, list[dict[str, str]]] | None = None,
) -> ModelPredictions:
    """``split`` predictions of every run in ``records``, per run and pooled per model (task,
    database, init).

    Folds of a seed are concatenated (each test image appears once per seed); seeds are kept
    apart as replicates. A run without its prediction file is left out with a note. Rows
    without a saved source take the manifest's (``manifests``: database -> manifest rows).
    """
    run_dir = Path(run_dir)
    parts: dict[ModelKey, list[Predictions]] = {}
    out = ModelPredictions()
    for run_id, run in runs_of(records).items():
        folder = run_dir / RUNS / run_id
        replicate = run["seed"] if isinstance(run["seed"], int) else 0
        if run["task"] == "classification":
            path = folder / predictions_file(split)
            reader = read_classification_predictions
        elif run["task"] == "segmentation":
            path = folder / per_image_file(split)
            reader = read_segmentation_predictions
        else:
            out.notes.append(f"run {run_id}: unknown task {run['task']!r}; no per-image statistics")
            continue
        if not path.is_file():
            out.notes.append(
                f"run {run_id}: {path.name} not found; left out of the bootstrap statistics"
            )
            continue
        pred = reader(path, replicate)
        if pred.strata is None and manifests and run["database"] in manifests:
            pred = _with_manifest_sources(pred, manifests[run["database"]])
        out.runs[run_id] = pred
        parts.setdefault((run["task"], run["database"], run["init"]), []).append(pred)
    for key, ps in parts.items():
        try:
            out.models[key] = concat(ps)
        except DataError as e:
            out.notes.append(f"{'/'.join(key)}: {e}")
    return out


def _with_manifest_sources(pred: Predictions, manifest: list[dict[str, str]]) -> Predictions:
    """``pred`` with strata = the manifest's finetuning source of each id, where every id
    names exactly one finetuning file (else unchanged)."""
    by_file: dict[str, set[str]] = {}
    for r in manifest:
        if r.get("role") == "finetune":
            by_file.setdefault(str(r.get("file")), set()).add(str(r.get("source")))
    found = [by_file.get(i, set()) for i in pred.ids.tolist()]
    if not found or any(len(f) != 1 for f in found):
        return pred
    return dataclasses.replace(pred, strata=np.array([next(iter(f)) for f in found], dtype=str))


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
    found = {p.parent.name: p.parent for p in folder.glob(f"*/{MANIFEST_FILE}")}
    names = [n for n in order if n in found] + sorted(set(found) - set(order))
    out = []
    for name in names:
        path = found[name]
        meta_file = path / META_FILE
        meta = read_json(meta_file) if meta_file.is_file() else {}
        out.append(
            DatabaseInfo(name=name, path=path, meta=meta, manifest=read_csv(path / MANIFEST_FILE))
        )
    return out


def brought_inits(plan: Sequence[Mapping[str, Any]]) -> list[str]:
    """The names of the arms started from weights you brought (``inits: [random, NAME=PATH]``:
    the plan entries with a ``weights`` file), in plan order."""
    return list(dict.fromkeys(e["init"] for e in plan if e.get("weights")))


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
