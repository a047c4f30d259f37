"""The benchmark report, rebuilt from saved artifacts alone: ``build_report(run_dir)``.

Reads ``RUN_DIR/results.csv``, the runs' per-image test predictions, the databases' manifests,
``plan.json``, ``provenance.json``, the runs' ``config.yaml`` and PNG figures, and writes
``RUN_DIR/report/`` (replaced whole, atomically)::

    table_*.csv / .md / .tex   thesis tables 5.2, 5.3, 6.1, 6.2, B.2, the bootstrap CIs,
                               the paired comparisons and the run list
    run_metrics_summary.csv    every recorded metric: n, mean, t-CI over runs, as numbers
    statistics.json            the numbers behind the statistics tables
    report.md                  every table and the verdicts in one Markdown file
    report.html                one self-contained page: tables, verdicts, every figure
                               (appendices A-C), provenance

Missing pieces (no manifests, a run without predictions or figures, no plan or provenance)
become a note in the report, not an error. Only a missing results.csv is an error.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medssl.artifacts import atomic_dir, read_json, write_csv, write_json, write_text
from medssl.errors import DataError
from medssl.reporting import html as H
from medssl.reporting.inputs import (
    DatabaseInfo,
    ModelKey,
    read_databases,
    read_plan,
    read_predictions,
    read_results,
    runs_of,
)
from medssl.reporting.tables import (
    CLASS_NAMES,
    ComparisonRow,
    ModelCI,
    Table,
    comparison_table,
    decimals_for,
    fmt_interval,
    fmt_number,
    fmt_p,
    metric_label,
    model_ci_table,
    run_metrics_table,
    source_counts_table,
    split_counts_table,
    to_markdown,
    write_table,
)
from medssl.stats.bootstrap import metric_ci
from medssl.stats.estimands import LOWER_IS_BETTER, Predictions
from medssl.stats.multiple import holm
from medssl.stats.paired import Comparison, paired_comparison, verdict
from medssl.stats.replicates import t_interval

SPLITS = ("train", "val", "test")
CLASSIFICATION_METRICS = ("mcc", "balanced_accuracy", "f1_weighted", "loss")  # thesis Table 6.1
SEGMENTATION_METRICS = ("dice", "iou", "pixel_accuracy", "loss", "hd")  # thesis Table 6.2
SENS_SPEC_METRICS = tuple(
    f"{k}_{c}" for c in CLASS_NAMES for k in ("sensitivity", "specificity")
)  # B.2
APPENDICES = (
    ("A", "pretraining", "Appendix A: pretraining (loss curves, t-SNE)"),
    ("B", "classification", "Appendix B: classification fine-tuning"),
    ("C", "segmentation", "Appendix C: segmentation fine-tuning"),
)


@dataclass(frozen=True)
class ReportOptions:
    """Statistics settings of the report (defaults are the ones the benchmark uses)."""

    baseline: str = "random"  # the init every pretrained model is compared against
    n_resamples: int = 2000  # bootstrap resamples (CIs)
    n_permutations: int = 2000  # permutations (p-values)
    seed: int = 0  # seed of every resampling stream: the report is reproducible
    confidence: float = 0.95
    alpha: float = 0.05  # family-wise level after Holm
    ci_metrics: dict[str, list[str]] = field(
        default_factory=lambda: {
            "classification": ["mcc", "balanced_accuracy", "f1_weighted"],
            "segmentation": ["dice", "iou"],
        }
    )
    # primary metric per task (thesis: MCC, Dice); every row is one member of the Holm family
    compare_metrics: dict[str, list[str]] = field(
        default_factory=lambda: {"classification": ["mcc"], "segmentation": ["dice"]}
    )


# --- statistics --------------------------------------------------------------------------------


def model_intervals(
    models: dict[ModelKey, Predictions], options: ReportOptions, notes: list[str]
) -> list[ModelCI]:
    """Bootstrap CI of each ``options.ci_metrics`` metric for every model with predictions."""
    out = []
    for (task, db, init), pred in models.items():
        for metric in options.ci_metrics.get(task, []):
            if metric not in pred.metrics:
                notes.append(
                    f"{task}/{db}/{init}: no per-image {metric!r} in the predictions; no CI"
                )
                continue
            iv = metric_ci(
                pred,
                metric,
                n_resamples=options.n_resamples,
                confidence=options.confidence,
                seed=options.seed,
            )
            out.append(
                ModelCI(
                    task=task,
                    database=db,
                    init=init,
                    metric=metric,
                    interval=iv,
                    n_seeds=len(set(pred.replicate.tolist())),
                    n_patients=len(set(pred.clusters.tolist())),
                )
            )
    return out


def compare_to_baseline(
    models: dict[ModelKey, Predictions], options: ReportOptions, notes: list[str]
) -> list[ComparisonRow]:
    """Every pretrained model vs ``options.baseline`` on the same task and database, Holm-adjusted
    across all comparisons returned, each with its verdict."""
    found: list[tuple[ModelKey, str, Comparison]] = []
    for (task, db, init), pred in models.items():
        if init == options.baseline:
            continue
        base = models.get((task, db, options.baseline))
        if base is None:
            notes.append(
                f"{task}/{db}/{init}: no {options.baseline!r} baseline predictions; not compared"
            )
            continue
        for metric in options.compare_metrics.get(task, []):
            if metric not in pred.metrics or metric not in base.metrics:
                notes.append(
                    f"{task}/{db}/{init}: {metric!r} missing from the predictions; not compared"
                )
                continue
            try:
                c = paired_comparison(
                    pred,
                    base,
                    metric,
                    n_resamples=options.n_resamples,
                    n_permutations=options.n_permutations,
                    confidence=options.confidence,
                    seed=options.seed,
                )
            except DataError as e:
                notes.append(f"{task}/{db}/{init} vs {options.baseline}: {e}")
                continue
            if c.n_unpaired:
                notes.append(
                    f"{task}/{db}/{init} vs {options.baseline}: {c.n_unpaired} prediction rows without a "
                    "partner (different test images or seeds) were left out of the paired comparison"
                )
            found.append(((task, db, init), metric, c))
    adjusted = holm([c.p_value for _, _, c in found])
    rows = []
    for ((task, db, init), metric, c), p_adj in zip(found, adjusted, strict=True):
        rows.append(
            ComparisonRow(
                task=task,
                database=db,
                init=init,
                baseline=options.baseline,
                metric=metric,
                pretrained=c.a,
                reference=c.b,
                difference=c.difference,
                p_value=c.p_value,
                holm_p=float(p_adj),
                verdict=verdict(
                    c, float(p_adj), alpha=options.alpha, lower_is_better=metric in LOWER_IS_BETTER
                ),
                n_images=c.n_images,
                n_seeds=c.n_replicates,
            )
        )
    return rows


def verdict_sentences(rows: Sequence[ComparisonRow], alpha: float) -> tuple[list[str], list[str]]:
    """(supported, within noise) plain-language sentences, one per comparison."""
    supported, noise = [], []
    for r in rows:
        d = decimals_for(r.metric)
        text = (
            f"{r.database} {r.task}, {metric_label(r.metric)}: {r.init} - {r.baseline} = "
            f"{fmt_number(r.difference.estimate, d)} (95% CI {fmt_interval(r.difference, d)}, "
            f"Holm p = {fmt_p(r.holm_p)})"
        )
        if r.verdict.startswith("supported"):
            direction = "better" if r.verdict.endswith("better") else "worse"
            supported.append(f"{text}: {r.init} is {direction} than {r.baseline}.")
        else:
            noise.append(f"{text}: {r.verdict}.")
    return supported, noise


# --- tables ------------------------------------------------------------------------------------


def results_tables(records: Sequence[dict[str, Any]], options: ReportOptions) -> list[Table]:
    """Thesis tables 6.1, 6.2 and B.2 for the tasks present in ``records``."""
    tasks = {r["task"] for r in records}
    out = []
    if "classification" in tasks:
        out.append(
            run_metrics_table(
                records,
                task="classification",
                metrics=CLASSIFICATION_METRICS,
                splits=SPLITS,
                name="table_6_1_classification",
                title="Table 6.1: classification (MCC, balanced accuracy, weighted F1, loss) per split",
                baseline=options.baseline,
                confidence=options.confidence,
            )
        )
    if "segmentation" in tasks:
        out.append(
            run_metrics_table(
                records,
                task="segmentation",
                metrics=SEGMENTATION_METRICS,
                splits=SPLITS,
                name="table_6_2_segmentation",
                title="Table 6.2: segmentation (Dice, IoU, pixel accuracy, loss, Hausdorff distance) per split",
                baseline=options.baseline,
                confidence=options.confidence,
            )
        )
    if "classification" in tasks:
        out.append(
            run_metrics_table(
                records,
                task="classification",
                metrics=SENS_SPEC_METRICS,
                splits=("test",),
                name="table_b_2_sensitivity_specificity",
                title="Table B.2: test sensitivity and specificity per class",
                baseline=options.baseline,
                confidence=options.confidence,
            )
        )
    return out


PLAN_COLUMNS = (
    "run_id",
    "kind",
    "task",
    "database",
    "init",
    "method",
    "seed",
    "fold",
    "status",
    "seconds",
)


def runs_table(plan: Sequence[dict[str, Any]]) -> Table:
    """The benchmark's runs with their status and time (columns present in plan.json)."""
    cols = [c for c in PLAN_COLUMNS if any(c in r for r in plan)]
    rows = []
    for r in plan:
        cells = []
        for c in cols:
            v = r.get(c)
            if c in ("init", "task") and r.get("kind") == "pretrain":
                v = None  # a pretraining run has a method, not an init or task
            if c == "seconds" and isinstance(v, (int, float)):
                cells.append(fmt_number(float(v), 1))
            else:
                cells.append("" if v is None else str(v))
        rows.append(tuple(cells))
    total = sum(float(r["seconds"]) for r in plan if isinstance(r.get("seconds"), (int, float)))
    return Table(
        name="table_runs",
        title="Runs of the benchmark (plan.json)",
        columns=tuple(cols),
        rows=tuple(rows),
        notes=f"Total run time: {fmt_number(total, 1)} s over {len(plan)} runs.",
    )


SUMMARY_COLUMNS = ("task", "database", "init", "split", "metric", "n", "mean", "ci_low", "ci_high")


def run_metric_summary(
    records: Sequence[dict[str, Any]], options: ReportOptions
) -> list[dict[str, Any]]:
    """Every recorded (task, database, init, split, metric): mean and t-CI over runs, as numbers
    (the machine-readable twin of the display tables; ``repr`` precision, empty when undefined)."""
    groups: dict[tuple[str, str, str, str, str], list[float]] = {}
    for r in records:
        key = (r["task"], r["database"], r["init"], r["split"], r["metric"])
        groups.setdefault(key, []).append(r["value"])
    out = []
    for key, values in groups.items():
        iv = t_interval(values, confidence=options.confidence)
        nums = {"mean": iv.estimate, "ci_low": iv.low, "ci_high": iv.high}
        row = dict(zip(SUMMARY_COLUMNS[:5], key, strict=True), n=iv.n)
        row.update({k: ("" if v != v else repr(float(v))) for k, v in nums.items()})
        out.append(row)
    return out


# --- figures -----------------------------------------------------------------------------------


def run_identities(
    plan: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]]
) -> dict[str, dict]:
    """run_id -> what is known about it: plan.json first, then results.csv."""
    from_results = {
        run_id: dict(info, kind="finetune") for run_id, info in runs_of(records).items()
    }
    known: dict[str, dict] = {}
    for r in plan:
        if "run_id" in r:
            known[str(r["run_id"])] = {**from_results.get(str(r["run_id"]), {}), **r}
    for run_id, info in from_results.items():
        known.setdefault(run_id, info)
    return known


def appendix_of(info: dict[str, Any]) -> str:
    """'pretraining', 'classification', 'segmentation' or 'other'."""
    if info.get("kind") == "pretrain":
        return "pretraining"
    return info.get("task") if info.get("task") in ("classification", "segmentation") else "other"


def run_label(run_id: str, info: dict[str, Any]) -> str:
    keys = (
        ("database", "method") if info.get("kind") == "pretrain" else ("database", "task", "init")
    )
    parts = [str(info[k]) for k in keys if info.get(k) not in (None, "")]
    for k in ("seed", "fold"):
        if info.get(k) not in (None, ""):
            parts.append(f"{k} {info[k]}")
    return f"{run_id} ({', '.join(parts)})" if parts else run_id


def figures_sections(run_dir: Path, idents: dict[str, dict]) -> list[H.Section]:
    """Appendices A-C (and 'other'): every PNG under every run folder, grouped by run.

    Runs appear in the order of ``idents`` (plan.json, then results.csv), others by name.
    """
    runs_root = run_dir / "runs"
    found = {p.name: p for p in runs_root.iterdir() if p.is_dir()} if runs_root.is_dir() else {}
    order = [r for r in idents if r in found] + sorted(set(found) - set(idents))
    folders = [found[r] for r in order]
    groups: dict[str, list[str]] = {}
    for folder in folders:
        info = idents.get(folder.name, {})
        pngs = sorted(folder.rglob("*.png"))
        label = run_label(folder.name, info)
        if pngs:
            figs = "".join(
                H.figure_html(p, f"{folder.name}/{p.relative_to(folder).as_posix()}") for p in pngs
            )
            body = f"<h3>{H.esc(label)}</h3><div>{figs}</div>"
        else:
            body = f"<h3>{H.esc(label)}</h3>" + H.paragraph(
                "No figures were saved for this run.", "note"
            )
        groups.setdefault(appendix_of(info), []).append(body)
    sections = []
    for letter, key, title in APPENDICES:
        body = "".join(groups.get(key, [])) or H.paragraph(
            f"No {key} runs found under {runs_root}.", "note"
        )
        sections.append(H.Section(f"appendix-{letter.lower()}", title, body))
    if groups.get("other"):
        sections.append(H.Section("appendix-other", "Other runs", "".join(groups["other"])))
    return sections


# --- provenance --------------------------------------------------------------------------------


def provenance_body(
    run_dir: Path,
    provenance: dict[str, Any],
    databases: Sequence[DatabaseInfo],
    runs: Table,
    run_order: Sequence[str] = (),
) -> str:
    """Environment, data checksums, the run list with times, and every run's resolved config."""
    parts = []
    if provenance:
        scalars = {k: v for k, v in provenance.items() if not isinstance(v, dict)}
        parts.append(H.mapping_html(scalars, "Environment"))
        for key, value in provenance.items():
            if not isinstance(value, dict):
                continue
            if all(not isinstance(v, (dict, list)) for v in value.values()):
                parts.append(H.mapping_html(value, key.replace("_", " ")))
            else:  # nested (per-run configs, benchmark config): collapsible JSON
                parts.append(
                    H.details_html(
                        key.replace("_", " "),
                        json.dumps(value, indent=2, sort_keys=True, default=str),
                    )
                )
    else:
        parts.append(
            H.paragraph(
                f"{run_dir / 'provenance.json'} not found: versions and device unknown.", "note"
            )
        )
    if databases:
        parts.append(
            H.mapping_html(
                {d.name: d.meta.get("checksum", "missing (no database.json)") for d in databases},
                "Data checksums (database.json)",
            )
        )
    parts.append(
        H.table_html(runs)
        if runs.rows
        else H.paragraph("plan.json not found: no run list.", "note")
    )
    found = {p.parent.name: p for p in (run_dir / "runs").glob("*/config.yaml")}
    order = [r for r in run_order if r in found] + sorted(set(found) - set(run_order))
    configs = [found[r] for r in order]
    if configs:
        parts.append("<h3>Resolved configurations</h3>")
        parts += [H.details_html(p.parent.name, p.read_text(encoding="utf-8")) for p in configs]
    else:
        parts.append(H.paragraph("No resolved config.yaml found in the run folders.", "note"))
    return "".join(parts)


# --- the report --------------------------------------------------------------------------------


def build_report(run_dir: str | Path, options: ReportOptions | None = None) -> Path:
    """Write ``RUN_DIR/report/`` from saved artifacts; returns the path of ``report.html``."""
    run_dir = Path(run_dir)
    options = options or ReportOptions()
    notes: list[str] = []

    records = read_results(run_dir / "results.csv")
    plan = read_plan(run_dir / "plan.json")
    provenance = (
        read_json(run_dir / "provenance.json") if (run_dir / "provenance.json").is_file() else {}
    )
    db_order = list(dict.fromkeys(r["database"] for r in records))
    databases = read_databases(run_dir / "databases", db_order)
    if not databases:
        notes.append(
            f"no database manifests under {run_dir / 'databases'}; tables 5.2 and 5.3 left out"
        )
    predictions = read_predictions(run_dir, records)
    notes += predictions.notes

    manifests = {d.name: d.manifest for d in databases}
    data_tables = (
        [source_counts_table(manifests), split_counts_table(manifests)] if databases else []
    )
    result_tables = results_tables(records, options)
    cis = model_intervals(predictions.models, options, notes)
    comparisons = compare_to_baseline(predictions.models, options, notes)
    stats_tables = [model_ci_table(cis), comparison_table(comparisons)]
    runs = runs_table(plan)
    supported, noise = verdict_sentences(comparisons, options.alpha)

    idents = run_identities(plan, records)
    verdict_html = _verdicts_html(supported, noise, comparisons, options)
    sections = [
        H.Section(
            "data",
            "Data (thesis Tables 5.2, 5.3)",
            "".join(H.table_html(t) for t in data_tables)
            or H.paragraph("No database manifests found.", "note"),
        ),
        H.Section(
            "results",
            "Results (thesis Tables 6.1, 6.2, B.2)",
            "".join(H.table_html(t) for t in result_tables),
        ),
        H.Section(
            "statistics",
            "Statistical comparison",
            verdict_html + "".join(H.table_html(t) for t in stats_tables),
        ),
        *figures_sections(run_dir, idents),
        H.Section(
            "provenance",
            "Provenance",
            provenance_body(run_dir, provenance, databases, runs, list(idents)),
        ),
    ]
    if notes:
        sections.append(H.Section("notes", "Notes on missing pieces", H.bullet_list(notes, "note")))
    page = H.page(
        "medssl benchmark report", sections, subtitle=f"Built from {run_dir.name}/ saved results"
    )

    all_tables = data_tables + result_tables + stats_tables + ([runs] if runs.rows else [])
    with atomic_dir(run_dir / "report", overwrite=True) as tmp:
        for t in all_tables:
            write_table(t, tmp)
        write_csv(
            tmp / "run_metrics_summary.csv", run_metric_summary(records, options), SUMMARY_COLUMNS
        )
        write_json(
            tmp / "statistics.json",
            {
                "options": dataclasses.asdict(options),
                "model_intervals": [dataclasses.asdict(c) for c in cis],
                "comparisons": [dataclasses.asdict(c) for c in comparisons],
                "notes": notes,
            },
        )
        write_text(tmp / "report.md", _markdown(all_tables, supported, noise, notes))
        write_text(tmp / "report.html", page)
    return run_dir / "report" / "report.html"


def _verdicts_html(
    supported: list[str], noise: list[str], rows: Sequence[ComparisonRow], options: ReportOptions
) -> str:
    if not rows:
        return H.paragraph(
            f"No pretrained model could be compared with a {options.baseline!r} baseline "
            "(per-image test predictions of both are needed).",
            "note",
        )
    rule = (
        f"A difference is called supported only when its {options.confidence:.0%} paired bootstrap CI "
        f"excludes 0 and its Holm-adjusted p-value (over all {len(rows)} comparisons) is below "
        f"{options.alpha}; everything else is within noise."
    )
    out = H.paragraph(rule)
    out += "<h3>Supported differences</h3>"
    out += (
        H.bullet_list(supported, "supported")
        if supported
        else H.paragraph(
            "None: no pretrained model differs from its baseline beyond noise.", "note"
        )
    )
    out += "<h3>Within noise</h3>"
    out += H.bullet_list(noise, "noise") if noise else H.paragraph("None.", "note")
    return out


def _markdown(
    tables: Sequence[Table], supported: list[str], noise: list[str], notes: list[str]
) -> str:
    parts = ["# medssl benchmark report", ""]
    parts += ["## Verdicts", "", "Supported differences:", ""]
    parts += [f"- {s}" for s in supported] or ["- none"]
    parts += ["", "Within noise:", ""]
    parts += [f"- {s}" for s in noise] or ["- none"]
    parts += ["", "## Tables", ""]
    for t in tables:
        parts += [to_markdown(t)]
    if notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(parts) + "\n"
