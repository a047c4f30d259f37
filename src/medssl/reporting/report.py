# Over 400 lines: one page and its Markdown twin, assembled in one atomic write.
"""The benchmark report, rebuilt from saved artifacts alone: ``build_report(run_dir)``.

Reads ``RUN_DIR/results.csv`` (in a `medssl benchmark` folder first gathered again from its
finished runs: :func:`gather_finished`), the runs' per-image predictions (train, validation
and test), the databases' manifests and ``database.json``, ``plan.json``, ``provenance.json``,
the runs' ``config.yaml`` and PNG figures, and writes ``RUN_DIR/report/`` (replaced whole,
atomically)::

    table_*.csv / .md / .tex   thesis tables 5.2, 5.3, 6.1, 6.2, B.2, the per-model intervals,
                               the comparisons (method level and fixed networks), the
                               source-only shortcut, per-source metrics and the run list
    run_metrics_summary.csv    every recorded metric: runs, undefined runs, mean, interval
    statistics.json            the numbers behind the statistics tables
    report.md                  the verdicts and every table in one Markdown file
    report.html                one self-contained page: question, verdicts, tables, every
                               figure (appendices A-C), provenance

The page opens with the answer: what was compared and how much training it got, then one
verdict per comparison (method level: :mod:`medssl.reporting.comparisons`). Reports built on
synthetic phantoms say so at the top and in every verdict. Missing pieces (no manifests, a run
without predictions or figures, no plan or provenance) become a note, not an error; only a
missing results.csv is an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medssl.artifacts import atomic_dir, read_json, write_csv, write_json, write_text
from medssl.errors import DataError
from medssl.reporting import html as H
from medssl.reporting.appendix import (
    figures_sections,
    provenance_body,
    run_identities,
    runs_table,
)
from medssl.reporting.comparisons import (
    SHORTCUT_WORDS,
    ComparisonRow,
    StatsSettings,
    compare,
    compare_with_brought,
    comparison_table,
    fixed_comparison_table,
    model_ci_table,
    model_intervals,
    summary_sentences,
    verdict_sentence,
)
from medssl.reporting.confounds import SHORTCUT, per_source_table, shortcut_runs
from medssl.reporting.departures import departures_table
from medssl.reporting.forest import forest_plot
from medssl.reporting.inputs import (
    DatabaseInfo,
    brought_inits,
    check_benchmark_folder,
    is_in_domain,
    is_thesis_record,
    read_databases,
    read_plan,
    read_predictions,
    read_results,
    split_sizes,
)
from medssl.reporting.label_efficiency import (
    LabelEfficiency,
    curve_figures,
    label_efficiency,
    low_label_summary,
    shows_label_efficiency,
    verdict_sentences,
)
from medssl.reporting.overview import finetuning_overviews, pretraining_overviews
from medssl.reporting.pretraining import health_of_runs, health_table, health_warnings
from medssl.reporting.tables import (
    CLASS_NAMES,
    Table,
    run_metrics_table,
    source_counts_table,
    split_counts_table,
    to_markdown,
    write_table,
)
from medssl.reporting.transfer import shows_transfer, transfer_matrix
from medssl.reporting.transfer import verdict_sentences as transfer_sentences
from medssl.runfiles import (
    DATABASES,
    FOREST_PLOT,
    PLAN,
    PROVENANCE,
    REPORT,
    REPORT_HTML,
    REPORT_MD,
    RESULTS,
    RUN_METRICS_SUMMARY,
    STATISTICS,
)
from medssl.stats.method import corrected_cv_interval
from medssl.stats.replicates import t_interval
from medssl.stats.verdicts import Verdict

SPLITS = ("train", "val", "test")
CLASSIFICATION_METRICS = ("mcc", "balanced_accuracy", "f1_weighted", "loss")  # thesis Table 6.1
SEGMENTATION_METRICS = ("dice", "iou", "pixel_accuracy", "loss", "hd")  # thesis Table 6.2
SEGMENTATION_EXTRA = tuple(  # beside Table 6.2: distances in other units, misses, false alarms
    ("test", m) for m in ("hd95", "hd_orig_px", "hd_mm", "missed_lesions", "normal_fp_images")
)
SENS_SPEC_METRICS = tuple(
    f"{k}_{c}" for c in CLASS_NAMES for k in ("sensitivity", "specificity")
)  # B.2
FEW_LABELS = "Few labels (at most 25% of the training labels)"
ALL_LABELS = "All the labels"
AGAINST_RANDOM = "Against random initialisation"
AGAINST_BROUGHT = "SSL encoders against the weights you brought (inits)"
QUESTION = (
    "Does self-supervised pretraining on unlabeled images give better models for the clinical "
    "task than training from scratch, by how much, and with what confidence?"
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

    @property
    def settings(self) -> StatsSettings:
        return StatsSettings(
            self.n_resamples, self.n_permutations, self.seed, self.confidence, self.alpha
        )


# --- what was run ------------------------------------------------------------------------------


def phantom_sources(databases: Sequence[DatabaseInfo]) -> dict[str, list[str]]:
    """Database -> its sources written as synthetic phantoms (``database.json`` "phantoms")."""
    return {d.name: list(d.meta.get("phantoms") or []) for d in databases if d.meta.get("phantoms")}


def coarse_mask_notes(databases: Sequence[DatabaseInfo]) -> list[str]:
    """One sentence per database whose finetuning masks include coarse ones (``database.json``
    "coarse_masks": {source: count}, e.g. mini-MIAS circles asked for with
    ``circles_as_masks``): its segmentation scores measure localisation, not outlining."""
    out = []
    for d in databases:
        coarse = {s: n for s, n in (d.meta.get("coarse_masks") or {}).items() if n}
        if coarse:
            per = ", ".join(f"{n} of {s}" for s, n in coarse.items())
            out.append(
                f"{d.name}: {sum(coarse.values())} finetuning lesion mask(s) are coarse masks "
                f"({per}): approximate regions drawn from the source's annotations (e.g. a "
                "circle of centre and radius), not outlines (manifest column coarse_mask 1); "
                "its segmentation scores (Dice, IoU, Hausdorff distances) measure how well a "
                "lesion is located, not how well it is outlined."
            )
    return out


def resampling_unit(db: DatabaseInfo | None) -> str:
    """What the bootstrap resamples for a database: patients, images, or both by source."""
    if db is None:
        return "patients (images where no patient id is known)"
    rows = [r for r in db.manifest if r.get("role") == "finetune"]
    if not rows or "patient_known" not in rows[0]:
        return "patients (images where no patient id is known)"
    known = sorted({r["source"] for r in rows if str(r["patient_known"]) == "1"})
    unknown = sorted({r["source"] for r in rows if str(r["patient_known"]) != "1"})
    if not unknown:
        return "patients"
    if not known:
        return f"images (no patient ids published by {', '.join(unknown)}; near-duplicates kept together)"
    return f"patients ({', '.join(known)}) and images ({', '.join(unknown)}: no patient ids)"


def budget_line(records: Sequence[Mapping[str, Any]], provenance: Mapping[str, Any]) -> str:
    """What was compared and how much training it got, in one line."""
    dbs = list(dict.fromkeys(r["database"] for r in records))
    tasks = list(dict.fromkeys(r["task"] for r in records))
    inits = [i for i in dict.fromkeys(r["init"] for r in records) if i != SHORTCUT]
    seeds = sorted({r["seed"] for r in records if r["seed"] is not None})
    folds = sorted({r["fold"] for r in records if r["fold"] is not None})
    epochs: dict[str, set[int]] = {"pretraining": set(), "fine-tuning": set()}
    for info in (provenance.get("runs") or {}).values():
        cfg = info.get("config") if isinstance(info, dict) else None
        if not isinstance(cfg, dict):
            continue
        if not isinstance(cfg.get("trainer"), dict) or "epochs" not in cfg["trainer"]:
            continue
        stage = "pretraining" if "method" in cfg else "fine-tuning"
        epochs[stage].add(int(cfg["trainer"]["epochs"]))
    budget = "; ".join(
        f"{k} {'/'.join(str(e) for e in sorted(v))} epoch{'s' if max(v) != 1 else ''}"
        for k, v in epochs.items()
        if v
    )
    split = f"{len(folds)}-fold cross-validation" if folds else "one train/val/test split"
    return (
        f"Compared: {', '.join(inits)} on {', '.join(dbs)} for {', '.join(tasks)}; "
        f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}, {split}"
        + (f"; {budget}" if budget else "")
        + "."
    )


def results_tables(records: Sequence[dict[str, Any]], options: ReportOptions) -> list[Table]:
    """Thesis tables 6.1, 6.2 and B.2 for the tasks present in ``records``."""
    tasks = {r["task"] for r in records}
    common = dict(baseline=options.baseline, confidence=options.confidence)
    out = []
    if "classification" in tasks:
        out.append(run_metrics_table(
            records, task="classification", metrics=CLASSIFICATION_METRICS, splits=SPLITS,
            name="table_6_1_classification",
            title="Table 6.1: classification (MCC, balanced accuracy, weighted F1, loss) per split",
            **common,
        ))  # fmt: skip
    if "segmentation" in tasks:
        out.append(run_metrics_table(
            records, task="segmentation", metrics=SEGMENTATION_METRICS, splits=SPLITS,
            extra=SEGMENTATION_EXTRA, name="table_6_2_segmentation",
            title="Table 6.2: segmentation (Dice, IoU, pixel accuracy, loss, Hausdorff distance) per "
            "split; test HD95, HD in original pixels and mm, missed lesions, normal images with "
            "false-positive pixels",
            **common,
        ))  # fmt: skip
    if "classification" in tasks:
        out.append(run_metrics_table(
            records, task="classification", metrics=SENS_SPEC_METRICS, splits=("test",),
            name="table_b_2_sensitivity_specificity",
            title="Table B.2: test sensitivity and specificity per class", **common,
        ))  # fmt: skip
    return out


SUMMARY_COLUMNS = (
    "task", "database", "init", "split", "metric", "runs", "undefined", "mean", "ci_low", "ci_high",
    "interval",
)  # fmt: skip
SUMMARY_INTERVALS = {
    False: "t over seeds (run-to-run spread on this test set)",
    True: "two-stage over seeds and folds (Nadeau-Bengio factor)",
}
"""What ``run_metrics_summary.csv``'s interval is, one split or folds."""


def run_metric_summary(
    records: Sequence[dict[str, Any]], options: ReportOptions
) -> list[dict[str, Any]]:
    """Every recorded (task, database, init, split, metric): runs, undefined runs, mean and
    interval over the defined ones, as numbers (``repr`` precision, empty when undefined), and
    which interval: the Student-t over seeds on one split (conditional on its test set), the
    two-stage interval of the report's CV path with folds (the interval of tables 6.1/6.2)."""
    groups: dict[tuple[str, str, str, str, str], dict[tuple[Any, Any], float]] = {}
    for r in records:
        key = (r["task"], r["database"], r["init"], r["split"], r["metric"])
        groups.setdefault(key, {})[(r["seed"], r["fold"])] = r["value"]
    out = []
    for key, values in groups.items():
        folded = any(fold is not None for _, fold in values)
        if folded:
            n_train, n_test = split_sizes(records, key[:3])
            iv = corrected_cv_interval(
                {(s if isinstance(s, int) else 0, f if isinstance(f, int) else 0): v
                 for (s, f), v in values.items()},
                n_train=n_train, n_test=n_test, confidence=options.confidence,
            ).interval  # fmt: skip
        else:
            iv = t_interval(list(values.values()), confidence=options.confidence)
        undefined = sum(v != v for v in values.values())
        nums = {"mean": iv.estimate, "ci_low": iv.low, "ci_high": iv.high}
        row = dict(zip(SUMMARY_COLUMNS[:5], key, strict=True), runs=len(values))
        row["undefined"] = undefined
        row.update({k: ("" if v != v else repr(float(v))) for k, v in nums.items()})
        row["interval"] = SUMMARY_INTERVALS[folded] if iv.low == iv.low else ""
        out.append(row)
    return out


# --- the report --------------------------------------------------------------------------------


@dataclass
class Statistics:
    """Everything the statistics sections show."""

    intervals: list
    comparisons: list[ComparisonRow]  # every model against random init
    shortcut: list[ComparisonRow]
    tables: list[Table]
    # every SSL encoder against each set of weights you brought (a family per brought arm)
    brought: list[ComparisonRow] = dataclasses.field(default_factory=list)


def compute_statistics(
    run_dir: Path,
    records: list[dict[str, Any]],
    databases: Sequence[DatabaseInfo],
    options: ReportOptions,
    notes: list[str],
    preset: str,
    brought: Sequence[str] = (),
) -> tuple[Statistics, list[dict[str, Any]]]:
    """Intervals, comparisons with random init, of the SSL encoders with each set of weights
    you brought (``brought``: those arms' names) and with the source-only shortcut; returns
    the statistics and the records extended by the shortcut's pseudo-runs."""
    manifests = {d.name: d.manifest for d in databases}
    test = read_predictions(run_dir, records, manifests=manifests)
    notes += test.notes
    cls_records = [r for r in records if r["task"] == "classification"]
    other = {
        s: read_predictions(run_dir, cls_records, split=s, manifests=manifests).runs
        for s in ("train", "val")
    }
    sc_records, sc_models = shortcut_runs(
        other["train"], {**other, "test": test.runs}, records, options.baseline
    )
    models = dict(test.models)
    settings = options.settings
    comparisons = compare(
        models, records, reference=options.baseline, metrics=options.compare_metrics,
        settings=settings, notes=notes, preset=preset,
    )  # fmt: skip
    against_brought = compare_with_brought(
        models, records, brought, baseline=options.baseline, metrics=options.compare_metrics,
        settings=settings, notes=notes, preset=preset,
    )  # fmt: skip
    all_records = records + sc_records
    all_models = {**models, **sc_models}
    shortcut = compare(
        all_models, all_records, reference=SHORTCUT, metrics={"classification": ["mcc"]},
        settings=settings, notes=notes, preset=preset, only_tasks=["classification"],
        family="shortcut comparisons",
    ) if sc_models else []  # fmt: skip
    intervals = model_intervals(all_models, all_records, options.ci_metrics, settings, notes)
    tables = [
        comparison_table(
            comparisons, name="table_comparisons",
            title="Pretrained vs random initialisation: method-level differences and verdicts",
        ),
        fixed_comparison_table(
            comparisons, options.alpha, name="table_comparisons_fixed",
            title="Pretrained vs random initialisation, for these trained networks",
        ),
        model_ci_table(intervals),
    ]  # fmt: skip
    if against_brought:
        tables.insert(1, comparison_table(
            against_brought, name="table_comparisons_brought",
            title="SSL encoders vs the weights you brought: method-level differences and verdicts",
        ))  # fmt: skip
    if shortcut:
        tables.append(comparison_table(
            shortcut, name="table_shortcut", words=SHORTCUT_WORDS,
            title="Does each model beat the source-only shortcut (class from the source alone)?",
        ))  # fmt: skip
    for task in ("classification", "segmentation"):
        t = per_source_table(all_models, task)
        if t.rows:
            tables.append(t)
    return Statistics(intervals, comparisons, shortcut, tables, against_brought), all_records


def shortcut_warnings(
    rows: Sequence[ComparisonRow], phantoms: Mapping[str, list[str]]
) -> list[str]:
    """A warning for every model that does not beat the source-only shortcut."""
    out = []
    for r in rows:
        if r.init == SHORTCUT:
            continue
        level = r.method if r.verdict != Verdict.NOT_ASSESSABLE or r.fixed is None else None
        iv = level.interval if level is not None else r.fixed.difference
        if iv.low == iv.low and iv.low > 0:
            continue
        which = "method level" if level is not None else "for these trained networks"
        why = (
            "recognising the source alone, not the lesion, scores as well"
            if r.method.b > 0.1
            else "the shortcut is near chance here, so the model is not shown to beat chance either"
        )
        out.append(
            ("On synthetic phantoms: " if r.database in phantoms else "")
            + f"{r.database} classification: {r.init} does not beat the source-only shortcut "
            f"(MCC {r.method.a:.3f} vs {r.method.b:.3f}; the 95% CI of the difference, {which}, "
            f"reaches 0 or below): {why}."
        )
    return out


def build_report(run_dir: str | Path, options: ReportOptions | None = None) -> Path:
    """Write ``RUN_DIR/report/`` from saved artifacts; returns the path of ``report.html``.
    A folder that is not a benchmark's (one run's folder, no results yet) is a DataError that
    says what it is (:func:`medssl.reporting.inputs.check_benchmark_folder`).

    In a `medssl benchmark` folder the finished runs' records are gathered into results.csv
    first (:func:`medssl.tasks.collect.collect_results`, as the benchmark does), so a report
    built while runs are unfinished holds what has finished and says at the top what has not.
    """
    missing = gather_finished(Path(run_dir))
    run_dir = check_benchmark_folder(Path(run_dir))
    options = options or ReportOptions()
    notes: list[str] = []

    every_record = read_results(run_dir / RESULTS)
    # the thesis's tables and comparisons: fine-tuning on the whole train split
    records = [r for r in every_record if is_thesis_record(r)]
    plan = read_plan(run_dir / PLAN)
    provenance = read_json(run_dir / PROVENANCE) if (run_dir / PROVENANCE).is_file() else {}
    preset = str((provenance.get("benchmark") or {}).get("preset") or "<preset>")
    db_order = list(dict.fromkeys(r["database"] for r in records))
    databases = read_databases(run_dir / DATABASES, db_order)
    if not databases:
        notes.append(
            f"no database manifests under {run_dir / 'databases'}; tables 5.2 and 5.3 left out"
        )
    phantoms = phantom_sources(databases)
    coarse = coarse_mask_notes(databases)
    coarse_html = H.bullet_list(coarse, "note") if coarse else ""
    brought = brought_inits(plan)
    stats, all_records = compute_statistics(
        run_dir, records, databases, options, notes, preset, brought
    )
    manifests = {d.name: d.manifest for d in databases}
    data_tables = (
        [source_counts_table(manifests), split_counts_table(manifests)] if databases else []
    )
    result_tables = results_tables(all_records, options)
    runs = runs_table(plan)
    by_name = {d.name: d for d in databases}
    sentences = [
        verdict_sentence(
            r, phantoms=r.database in phantoms, unit=resampling_unit(by_name.get(r.database))
        )
        for r in stats.comparisons + stats.brought
    ]
    units = {d.name: resampling_unit(d) for d in databases}
    summary = summary_sentences(stats.comparisons, phantoms=phantoms, units=units)
    against = summary_sentences(stats.brought, phantoms=phantoms, units=units)
    health = health_of_runs(run_dir, plan)
    warnings = shortcut_warnings(stats.shortcut, phantoms) + health_warnings(health, phantoms)
    if health:
        stats.tables.append(health_table(health))
    idents = run_identities(plan, records)
    all_tables = stats.tables + data_tables + result_tables + ([runs] if runs.rows else [])
    le = tr = None
    summary_groups = (
        [(AGAINST_RANDOM, summary), (AGAINST_BROUGHT, against)] if against else [("", summary)]
    )
    in_domain = [r for r in every_record if is_in_domain(r)]
    if shows_label_efficiency(in_domain):
        le = label_efficiency(
            run_dir, in_domain, manifests=manifests, baseline=options.baseline,
            metrics=options.compare_metrics, settings=options.settings, notes=notes,
            preset=preset, brought=brought,
        )  # fmt: skip
        le_sentences = verdict_sentences(le, phantoms=phantoms, units=units)
        low = low_label_summary(le, phantoms=phantoms, units=units)
        if low:  # the answer leads with few labels, where pretraining is expected to pay
            summary_groups = [(FEW_LABELS, low), (ALL_LABELS, summary), *summary_groups[1:]]
        all_tables = le.tables() + all_tables
    if shows_transfer(every_record):
        tr = transfer_matrix(
            run_dir, every_record, manifests=manifests, baseline=options.baseline,
            metrics=options.compare_metrics, settings=options.settings, notes=notes,
            preset=preset, brought=brought,
        )  # fmt: skip
        tr_sentences = transfer_sentences(tr, phantoms=phantoms)
        all_tables = tr.tables() + all_tables
    if uses_thesis_presets(provenance):
        all_tables.append(departures_table())
    with atomic_dir(run_dir / REPORT, overwrite=True) as tmp:
        forest = tmp / FOREST_PLOT
        drawn = forest_plot(stats.comparisons, forest)
        curves = pretraining_overviews(run_dir, plan, tmp) + finetuning_overviews(
            run_dir, records, tmp
        )
        sections = [
            H.Section("answer", "The answer", _answer_html(
                records, provenance, phantoms, summary_groups, sentences, warnings,
                stats.comparisons + stats.brought,
                options, forest if drawn else None, missing,
            )),
            *([H.Section("label-efficiency", "Label efficiency and frozen-encoder probes",
                         _label_efficiency_html(le, le_sentences, tmp))] if le else []),
            *([H.Section("transfer", "Pretraining data x target database (shared test images)",
                         H.bullet_list(tr_sentences, "verdicts")
                         + "".join(H.table_html(t) for t in tr.tables()))] if tr else []),
            H.Section("statistics", "Statistical comparison",
                      "".join(H.table_html(t) for t in stats.tables) + _units_html(databases)),
            H.Section("data", "Data (thesis Tables 5.2, 5.3)",
                      ("".join(H.table_html(t) for t in data_tables)
                       or H.paragraph("No database manifests found.", "note")) + coarse_html),
            H.Section("results", "Results (thesis Tables 6.1, 6.2, B.2)",
                      "".join(H.table_html(t) for t in result_tables) + coarse_html),
            H.Section("curves", "Training curves, every run of a database in one figure",
                      "".join(H.figure_html(p, c, wide=True) for c, p in curves)
                      or H.paragraph("No per-epoch records (metrics.csv) found.", "note")),
            *figures_sections(run_dir, idents),
            *_departures_section(provenance),
            H.Section("provenance", "Provenance",
                      provenance_body(run_dir, provenance, databases, runs, list(idents))),
        ]  # fmt: skip
        if notes:
            sections.append(
                H.Section("notes", "Notes on missing pieces", H.bullet_list(notes, "note"))
            )
        title = "medssl benchmark report" + (" (synthetic phantoms)" if phantoms else "")
        page = H.page(title, sections, subtitle=f"Built from {run_dir.name}/ saved results")
        for t in all_tables:
            write_table(t, tmp)
        write_csv(
            tmp / RUN_METRICS_SUMMARY,
            run_metric_summary(all_records, options),
            SUMMARY_COLUMNS,
        )
        write_json(
            tmp / STATISTICS,
            {
                "options": dataclasses.asdict(options),
                "model_intervals": [dataclasses.asdict(c) for c in stats.intervals],
                "comparisons": [dataclasses.asdict(c) for c in stats.comparisons],
                "comparisons_with_brought": [dataclasses.asdict(c) for c in stats.brought],
                "shortcut_comparisons": [dataclasses.asdict(c) for c in stats.shortcut],
                "label_efficiency": dataclasses.asdict(le) if le else None,
                "transfer": dataclasses.asdict(tr) if tr else None,
                "phantoms": phantoms,
                "notes": notes,
            },
        )
        markdown = _markdown(
            all_tables, summary_groups, sentences, warnings, phantoms, notes, coarse, missing
        )
        if le:
            markdown += "\n## Label efficiency: verdicts per fraction\n\n" + "".join(
                f"- {s}\n" for s in le_sentences
            )
        if tr:
            markdown += "\n## Transfer: verdicts on shared test images\n\n" + "".join(
                f"- {s}\n" for s in tr_sentences
            )
        write_text(tmp / REPORT_MD, markdown)
        write_text(tmp / REPORT_HTML, page)
    return run_dir / REPORT / REPORT_HTML


def gather_finished(run_dir: Path) -> str | None:
    """Gather a benchmark folder's finished runs into results.csv; the line on what is not
    finished (None when all is, or when ``run_dir`` is not a `medssl benchmark` folder)."""
    from medssl.tasks.collect import collect_results, is_benchmark

    if not is_benchmark(run_dir):
        return None
    progress = collect_results(run_dir)
    if not progress.evaluated:
        raise DataError(
            "no fine-tuning or probe run of this benchmark has finished yet"
            + (f" ({progress.note()})" if progress.unfinished else ""),
            file=str(run_dir),
        )
    return progress.note()


def _label_efficiency_html(le: LabelEfficiency, sentences: list[str], folder: Path) -> str:
    """The curves, then the verdicts per fraction, then the tables (figures drawn here)."""
    out = H.paragraph(
        "Each model fine-tuned or probed on nested, class-stratified, patient-grouped fractions "
        "of its training labels (the same subset for every initialisation of a seed), tested "
        "on the same test images; probes read the frozen encoder's features (random init "
        "included). Verdicts are Holm-adjusted over every comparison of this section at once."
    )
    out += "".join(H.figure_html(p, c, wide=True) for c, p in curve_figures(le.points, folder))
    out += "<h3>Verdicts per fraction</h3>" + H.bullet_list(sentences, "verdicts")
    return out + "".join(H.table_html(t) for t in le.tables())


def uses_thesis_presets(provenance: Mapping[str, Any]) -> bool:
    bench = provenance.get("benchmark") or {}
    return "thesis" in (bench.get("pretrain_preset"), bench.get("finetune_preset"))


def _departures_section(provenance: Mapping[str, Any]) -> list[H.Section]:
    if not uses_thesis_presets(provenance):
        return []
    table = departures_table()
    return [
        H.Section(
            "departures", "Departures of the thesis presets from the thesis", H.table_html(table)
        )
    ]


def _phantom_banner(phantoms: Mapping[str, list[str]]) -> str:
    listed = "; ".join(f"{db}: {', '.join(srcs)}" for db, srcs in phantoms.items())
    return (
        "These results are on synthetic phantoms, not on real patient images "
        f"({listed}). They show that the pipeline runs; they say nothing about real data."
    )


def _answer_html(
    records,
    provenance,
    phantoms,
    summary_groups,
    sentences,
    warnings,
    rows,
    options,
    forest,
    missing,
) -> str:
    out = ""
    if phantoms:
        out += H.paragraph(_phantom_banner(phantoms), "warning")
    out += H.paragraph(QUESTION, "question") + H.paragraph(budget_line(records, provenance))
    if missing:
        out += H.paragraph(missing, "warning")
    if not rows:
        return out + H.paragraph(
            f"No pretrained model could be compared with a {options.baseline!r} baseline "
            "(per-image test predictions of both are needed).",
            "note",
        )
    out += H.paragraph(
        "Verdicts are about the method: their intervals include the variance between training "
        "runs (seeds, paired between the arms that share them; folds) as well as the test "
        "patients, Holm-adjusted over the comparisons; a difference is supported only when its "
        f"method-level unadjusted 95% CI excludes 0 and its Holm p < {options.alpha}. A "
        "difference that is not supported comes with the smallest difference its design "
        "detects with 80% power: smaller effects may be there, unseen. The result for the "
        "trained networks at hand follows each verdict."
    )
    for heading, summary in summary_groups:
        out += (f"<h3>{H.esc(heading)}</h3>" if heading else "") + H.bullet_list(
            summary, "verdicts"
        )
    classes = {
        Verdict.BETTER: "supported",
        Verdict.WORSE: "supported",
        Verdict.NOISE: "noise",
    }
    detail = (
        "<ul>"
        + "".join(
            f'<li class="{classes.get(r.verdict, "note")}">{H.esc(s)}</li>'
            for r, s in zip(rows, sentences, strict=True)
        )
        + "</ul>"
    )
    out += f"<details><summary>Each comparison in full</summary>{detail}</details>"
    if forest is not None:
        out += H.figure_html(
            forest, "Every pretrained - random difference with its 95% CI", wide=True
        )
    if warnings:
        out += "<h3>Warnings</h3>" + H.bullet_list(warnings, "warning")
    return out


def _units_html(databases: Sequence[DatabaseInfo]) -> str:
    if not databases:
        return ""
    items = [f"{d.name}: the bootstrap resamples {resampling_unit(d)}." for d in databases]
    return H.paragraph(
        "Resampling units of the intervals over test images:", "note"
    ) + H.bullet_list(items, "note")


def _markdown(
    tables: Sequence[Table],
    summary_groups: Sequence[tuple[str, list[str]]],
    sentences: list[str],
    warnings: list[str],
    phantoms: Mapping[str, list[str]],
    notes: list[str],
    data_notes: list[str],
    missing: str | None = None,
) -> str:
    parts = ["# medssl benchmark report", ""]
    if phantoms:
        parts += [f"**{_phantom_banner(phantoms)}**", ""]
    parts += [QUESTION, ""]
    if missing:
        parts += [f"**{missing}**", ""]
    parts += ["## Summary", ""]
    for heading, summary in summary_groups:
        parts += [f"### {heading}", ""] if heading else []
        parts += [f"- {s}" for s in summary] or ["- none"]
        parts += [""] if heading else []
    parts += ["", "## Verdicts", ""]
    parts += [f"- {s}" for s in sentences] or ["- none"]
    if warnings:
        parts += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    parts += ["", "## Tables", ""]
    for t in tables:
        parts += [to_markdown(t)]
    if data_notes:
        parts += ["## About the data", ""] + [f"- {n}" for n in data_notes] + [""]
    if notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(parts) + "\n"
