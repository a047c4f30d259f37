"""The report's tables in the shape of the thesis, each rendered as CSV, Markdown and LaTeX.

A :class:`Table` holds display strings only, formatted deterministically (fixed decimals,
``n/a`` for undefined values, ``mean ± half-width`` of the Student-t interval across runs when
there are several seeds/folds, ``estimate [low, high]`` for bootstrap intervals), so a table
rebuilt from the same records is the same text byte for byte.

Builders (pure functions of parsed artifacts):
- :func:`source_counts_table` — thesis Table 5.2: per database, role, source x class counts.
- :func:`split_counts_table` — thesis Table 5.3: per database, role, split x class counts.
- :func:`run_metrics_table` — thesis Tables 6.1 / 6.2 / B.2: rows database x init, columns
  split x metric, mean ± CI over seeds/folds (the two-stage interval over seeds and folds
  with folds), undefined runs counted in the cell.

The statistics tables (per-model intervals, comparisons) live in
:mod:`medssl.reporting.comparisons`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medssl.artifacts import write_text
from medssl.data.describe import THESIS_CLASS_ORDER, composition_rows, split_rows
from medssl.metrics.undefined import undefined_note
from medssl.stats.bootstrap import Interval
from medssl.stats.method import corrected_cv_interval
from medssl.stats.replicates import t_interval

CLASS_NAMES = ("normal", "benign", "malignant")  # medssl.data.records.CLASSES
NA = "n/a"

METRIC_LABELS = {
    "mcc": "MCC",
    "balanced_accuracy": "BA",
    "f1_weighted": "F1w",
    "f1_macro": "F1m",
    "accuracy": "Acc",
    "loss": "Loss",
    "auroc_macro": "AUROC",
    "average_precision": "AP",
    "expected_cost": "Cost",
    "dice": "Dice",
    "iou": "IoU",
    "pixel_accuracy": "PA",
    "precision": "Prec",
    "recall": "Rec",
    "hd": "HD [px@64]",
    "hd95": "HD95 [px@64]",
    "hd_orig_px": "HD [orig px]",
    "hd95_orig_px": "HD95 [orig px]",
    "hd_mm": "HD [mm]",
    "hd95_mm": "HD95 [mm]",
    "missed_lesions": "missed lesions",
    "normal_fp_images": "normals with FP",
}
"""Column labels; distances carry their unit: pixels of the 64-px finetuning grid, pixels of
the original image, or millimetres (DICOM pixel spacing)."""
DECIMALS = {
    "hd": 2, "hd95": 2, "hd_orig_px": 1, "hd95_orig_px": 1, "hd_mm": 2, "hd95_mm": 2,
    "missed_lesions": 1, "normal_fp_images": 1,
}  # fmt: skip
"""Decimals per metric; everything else 3."""


def metric_label(metric: str) -> str:
    """Short column label: ``sensitivity_benign`` -> ``Sens benign``."""
    for prefix, short in (("sensitivity_", "Sens "), ("specificity_", "Spec ")):
        if metric.startswith(prefix):
            return short + metric[len(prefix) :]
    return METRIC_LABELS.get(metric, metric)


def decimals_for(metric: str) -> int:
    return DECIMALS.get(metric, 3)


@dataclass(frozen=True)
class Table:
    """A rendered table. ``name`` is the file stem; cells are display strings."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: str = ""


# --- formatting --------------------------------------------------------------------------------


def fmt_number(x: float | None, decimals: int = 3) -> str:
    """Fixed decimals; ``n/a`` for None/NaN; never ``-0.000``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return NA
    s = f"{x:.{decimals}f}"
    if s.startswith("-") and float(s) == 0.0:
        s = s[1:]
    return s


def fmt_mean_ci(iv: Interval, decimals: int = 3) -> str:
    """``mean ± half-width`` of a symmetric interval; the mean alone when there is no interval."""
    if math.isnan(iv.estimate):
        return NA
    if math.isnan(iv.low) or math.isnan(iv.high):
        return fmt_number(iv.estimate, decimals)
    return f"{fmt_number(iv.estimate, decimals)} ± {fmt_number((iv.high - iv.low) / 2, decimals)}"


def fmt_interval(iv: Interval, decimals: int = 3) -> str:
    """``[low, high]`` (asymmetric bootstrap interval)."""
    if math.isnan(iv.low) or math.isnan(iv.high):
        return NA
    return f"[{fmt_number(iv.low, decimals)}, {fmt_number(iv.high, decimals)}]"


def fmt_p(p: float) -> str:
    """p-values with 3 decimals, ``<0.001`` below that."""
    if p is None or math.isnan(p):
        return NA
    return "<0.001" if p < 0.0005 else f"{p:.3f}"


# --- renderers ---------------------------------------------------------------------------------


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    return buf.getvalue()


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|")


def to_markdown(table: Table) -> str:
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(_md_cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join(" --- " for _ in table.columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    if table.notes:
        lines += ["", table.notes]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "<": r"$<$",
    ">": r"$>$",
}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in s)


def to_latex(table: Table) -> str:
    """A ``table`` environment with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    spec = "l" * len(table.columns)
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\caption{" + latex_escape(table.title) + "}",
        r"\label{tab:" + table.name + "}",
        r"\begin{tabular}{" + spec + "}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in table.columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(table: Table, folder: str | Path) -> list[Path]:
    """Write ``<name>.csv``, ``<name>.md`` and ``<name>.tex`` atomically into ``folder``."""
    folder = Path(folder)
    return [
        write_text(folder / f"{table.name}.csv", to_csv(table)),
        write_text(folder / f"{table.name}.md", to_markdown(table)),
        write_text(folder / f"{table.name}.tex", to_latex(table)),
    ]


# --- data tables (5.2, 5.3) --------------------------------------------------------------------


def _count_table(
    manifests: Mapping[str, Sequence[Mapping[str, Any]]],
    rows_of: Any,
    key: str,
    name: str,
    title: str,
) -> Table:
    rows = [
        (db, str(r["role"]), str(r[key]), *(str(r[c]) for c in THESIS_CLASS_ORDER), str(r["total"]))
        for db, manifest in manifests.items()
        for r in rows_of(manifest)
    ]
    columns = ("database", "role", key, *THESIS_CLASS_ORDER, "total")
    return Table(name=name, title=title, columns=columns, rows=tuple(rows))


def source_counts_table(manifests: Mapping[str, Sequence[Mapping[str, Any]]]) -> Table:
    """Thesis Table 5.2 for every database (manifests: database name -> manifest rows), rows of
    :func:`medssl.data.describe.composition_rows`, the table's one definition."""
    return _count_table(
        manifests, composition_rows, "source", "table_5_2_sources",
        "Table 5.2: images per database, role and source, by class",
    )  # fmt: skip


def split_counts_table(manifests: Mapping[str, Sequence[Mapping[str, Any]]]) -> Table:
    """Thesis Table 5.3 for every database, rows of :func:`medssl.data.describe.split_rows`."""
    return _count_table(
        manifests, split_rows, "split", "table_5_3_splits",
        "Table 5.3: images per database, role and split, by class",
    )  # fmt: skip


# --- results tables (6.1, 6.2, B.2) ------------------------------------------------------------


def model_order(
    records: Iterable[Mapping[str, Any]], task: str, baseline: str
) -> list[tuple[str, str]]:
    """(database, init) pairs of ``task``: databases in first-appearance order, baseline first."""
    dbs: list[str] = []
    inits: dict[str, list[str]] = {}
    for r in records:
        if r["task"] != task:
            continue
        if r["database"] not in inits:
            dbs.append(r["database"])
            inits[r["database"]] = []
        if r["init"] not in inits[r["database"]]:
            inits[r["database"]].append(r["init"])
    out = []
    for db in dbs:
        ordered = [i for i in inits[db] if i == baseline] + [i for i in inits[db] if i != baseline]
        out += [(db, i) for i in ordered]
    return out


def run_metrics_table(
    records: Sequence[Mapping[str, Any]],
    *,
    task: str,
    metrics: Sequence[str],
    splits: Sequence[str],
    name: str,
    title: str,
    baseline: str = "random",
    confidence: float = 0.95,
    extra: Sequence[tuple[str, str]] = (),
) -> Table:
    """Rows database x init; columns ``<split> <metric>`` (then ``extra`` (split, metric)
    columns): mean ± CI half-width over (seed, fold) runs.

    One split: the Student-t interval over seeds (run-to-run spread on one test set). Folds:
    the two-stage interval of :func:`medssl.stats.method.corrected_cv_interval`, between seeds
    and within a seed across folds with the Nadeau & Bengio (2003) n_test / n_train factor for
    the data the folds share (one seed: the mean alone). A run whose value is undefined is left
    out of the mean and counted in the cell ("k undef."). ``runs`` counts the row's runs.
    """
    from medssl.reporting.inputs import split_sizes

    index: dict[tuple[str, str, str, str], dict[tuple[Any, Any], float]] = {}
    runs: dict[tuple[str, str], set[tuple[Any, Any]]] = {}
    folded: set[tuple[str, str]] = set()
    for r in records:
        if r["task"] != task:
            continue
        run = (r["seed"], r["fold"])
        index.setdefault((r["database"], r["init"], r["split"], r["metric"]), {})[run] = float(
            r["value"]
        )
        runs.setdefault((r["database"], r["init"]), set()).add(run)
        if r["fold"] is not None:
            folded.add((r["database"], r["init"]))
    cols = [(s, m) for s in splits for m in metrics] + list(extra)
    columns = ["database", "init", "runs"] + [f"{s} {metric_label(m)}" for s, m in cols]
    rows = []
    undefined_metrics: list[str] = []
    for db, init in model_order(records, task, baseline):
        cells = [db, init, str(len(runs.get((db, init), ())))]
        n_train, n_test = split_sizes(records, (task, db, init))
        for s, m in cols:
            values = index.get((db, init, s, m), {})
            if (db, init) in folded:
                iv = corrected_cv_interval(
                    {(k[0] or 0, k[1] or 0): v for k, v in values.items()},
                    n_train=n_train, n_test=n_test, confidence=confidence,
                ).interval  # fmt: skip
            else:
                iv = t_interval(list(values.values()), confidence=confidence)
            undefined = sum(np.isnan(v) for v in values.values())
            cell = fmt_mean_ci(iv, decimals_for(m))
            cells.append(cell + (f" ({undefined} undef.)" if undefined and values else ""))
            if undefined and values:
                undefined_metrics.append(m)
        rows.append(tuple(cells))
    notes = (
        f"Mean over runs ± half-width of its {confidence:.0%} interval: across seeds on one test "
        "set (run-to-run spread, conditional on the test set) for a single split; with folds the "
        "two-stage interval over seeds and, within a seed, folds (Nadeau & Bengio 2003 factor). "
        "A single run (with folds, a single seed) shows its value alone. n/a: undefined or not recorded; k undef.: runs whose value is undefined, left out "
        "of the mean."
    )
    if undefined_metrics:
        notes += f" Undefined here because {undefined_note(undefined_metrics)}."
    return Table(name=name, title=title, columns=tuple(columns), rows=tuple(rows), notes=notes)
