"""Label-efficiency curves and frozen-encoder probes in the report.

Read from results.csv alone (plus the runs' saved predictions): records carry their
``evaluation`` (finetune, frozen, linear, knn) and label ``fraction``. For every (evaluation,
fraction) the runs are a benchmark of their own, and get the report's statistics
(:mod:`medssl.reporting.comparisons`): each model's method-level interval of the primary
metric (``model_intervals``: two-level over seeds and test patients, or two-stage over seeds
and folds with folds) and each pretrained model against random init of the same evaluation and
fraction (``compare``). Then:

- **verdicts per fraction**, Holm-adjusted over the whole declared family: every
  fraction x method x database x task x evaluation comparison of the benchmark at once (the
  main report's verdicts, fine-tuning on the whole train split, keep their own family);
- **curves**: per database, task and evaluation, the metric against the label fraction (log
  x axis), one line per initialisation with its method-level 95% CIs
  (:func:`curve_figures`), and the same numbers as a table;
- **area under each curve**: the trapezoid of the per-run means over log10(fraction),
  divided by the width of that range: the curve's mean height, in the metric's own units
  (a single fraction: its value). A one-number summary without an interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medssl.reporting.comparisons import (
    ComparisonRow,
    ModelCI,
    StatsSettings,
    compare,
    compare_with_brought,
    holm_over,
    model_intervals,
    summary_sentences,
    verdict_sentence,
)
from medssl.reporting.inputs import read_predictions, split_sizes
from medssl.reporting.tables import (
    Table,
    decimals_for,
    fmt_interval,
    fmt_number,
    fmt_p,
    metric_label,
)
from medssl.stats.method import MIN_REPLICATES

FAMILY = "label-efficiency comparisons"
LOW_LABELS = 0.25
"""Fractions at or below this are the answer's "few labels" (10-25%: where the literature
reports the gains of self-supervised pretraining)."""

EVALUATION_WORDS = {
    "finetune": "fine-tuning",
    "frozen": "frozen encoder (decoder trained)",
    "linear": "linear probe",
    "knn": "kNN probe",
}


@dataclass(frozen=True)
class CurvePoint:
    evaluation: str
    fraction: float
    n_train: float  # mean train images of the model's runs at this fraction
    ci: ModelCI  # the model's test metric, method-level interval in ci.method


@dataclass(frozen=True)
class FractionComparison:
    evaluation: str
    fraction: float
    row: ComparisonRow  # Holm-adjusted over the whole family


@dataclass
class LabelEfficiency:
    points: list[CurvePoint] = field(default_factory=list)
    comparisons: list[FractionComparison] = field(default_factory=list)
    family: int = 0  # comparisons in the Holm family (those with enough seeds)

    def tables(self) -> list[Table]:
        return [curve_table(self.points), area_table(self.points), verdict_table(self)]


def groups_of(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, float]]:
    """The (evaluation, fraction) pairs of ``records``, evaluations in first-appearance order,
    fractions ascending."""
    evals = list(dict.fromkeys(r["evaluation"] for r in records))
    fracs = sorted({float(r["fraction"]) for r in records})
    present = {(r["evaluation"], float(r["fraction"])) for r in records}
    return [(e, f) for e in evals for f in fracs if (e, f) in present]


def shows_label_efficiency(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the records hold more than fine-tuning on the whole train split."""
    return any(g != ("finetune", 1.0) for g in groups_of(records))


def label_efficiency(
    run_dir: Path,
    records: Sequence[Mapping[str, Any]],
    *,
    manifests: Mapping[str, list[dict[str, str]]],
    baseline: str,
    metrics: Mapping[str, Sequence[str]],
    settings: StatsSettings,
    notes: list[str],
    preset: str = "<preset>",
    brought: Sequence[str] = (),
) -> LabelEfficiency:
    """Intervals and comparisons per (evaluation, fraction), Holm over the whole family; the
    SSL encoders against each set of weights you brought (``brought``) in a family of their
    own per brought arm."""
    out = LabelEfficiency()
    found: list[tuple[str, float, ComparisonRow]] = []
    against: dict[str, list[tuple[str, float, ComparisonRow]]] = {b: [] for b in brought}
    for evaluation, fraction in groups_of(records):
        sub = [
            r for r in records if (r["evaluation"], float(r["fraction"])) == (evaluation, fraction)
        ]
        mine: list[str] = []
        preds = read_predictions(run_dir, sub, manifests=manifests)
        mine += preds.notes
        for ci in model_intervals(preds.models, sub, metrics, settings, mine):
            n_train, _ = split_sizes(sub, (ci.task, ci.database, ci.init))
            out.points.append(CurvePoint(evaluation, fraction, n_train, ci))
        rows = compare(
            preds.models, sub, reference=baseline, metrics=metrics, settings=settings,
            notes=mine, preset=preset,
        )  # fmt: skip
        found += [(evaluation, fraction, r) for r in rows]
        for r in compare_with_brought(
            preds.models, sub, brought, baseline=baseline, metrics=metrics, settings=settings,
            notes=mine, preset=preset,
        ):  # fmt: skip
            against[r.reference].append((evaluation, fraction, r))
        notes += [f"{evaluation} at fraction {fraction:g}: {n}" for n in mine]
    rows, out.family = holm_over([r for _, _, r in found], settings.alpha, FAMILY)
    for (evaluation, fraction, _), row in zip(found, rows, strict=True):
        out.comparisons.append(FractionComparison(evaluation, fraction, row))
    for name, group in against.items():
        rows, _ = holm_over([r for _, _, r in group], settings.alpha, f"{FAMILY} with {name}")
        for (evaluation, fraction, _), row in zip(group, rows, strict=True):
            out.comparisons.append(FractionComparison(evaluation, fraction, row))
    return out


def _lead(c: FractionComparison) -> str:
    return f"{EVALUATION_WORDS.get(c.evaluation, c.evaluation)}, {c.fraction:.0%} of the labels: "


def repeats_main(c: FractionComparison) -> bool:
    """Fine-tuning on all the labels: the main verdicts' comparison (in its own family here)."""
    return c.evaluation == "finetune" and c.fraction == 1.0


def verdict_sentences(
    le: LabelEfficiency, *, phantoms: Mapping[str, Any], units: Mapping[str, str]
) -> list[str]:
    """One sentence per comparison, led by its evaluation and label fraction; fine-tuning on
    all the labels, whose verdicts the answer already lists, is one line pointing there."""
    out = [
        _lead(c)
        + verdict_sentence(
            c.row, phantoms=c.row.database in phantoms, unit=units.get(c.row.database, "patients")
        )
        for c in le.comparisons
        if not repeats_main(c)
    ]
    if any(repeats_main(c) for c in le.comparisons):
        out.append(
            "fine-tuning, 100% of the labels: the verdicts of the answer above (this family's "
            "Holm p in the table below)."
        )
    return out


def low_label_summary(
    le: LabelEfficiency, *, phantoms: Mapping[str, Any], units: Mapping[str, str]
) -> list[str]:
    """The answer's lead with label fractions: one summary sentence per (evaluation, fraction
    of at most :data:`LOW_LABELS`, database, task), with the effect each design detects."""
    out = []
    groups = dict.fromkeys((c.evaluation, c.fraction) for c in le.comparisons)
    for evaluation, fraction in sorted(groups, key=lambda g: (g[1], list(groups).index(g))):
        if fraction > LOW_LABELS:
            continue
        mine = [c for c in le.comparisons if (c.evaluation, c.fraction) == (evaluation, fraction)]
        out += summary_sentences(
            [c.row for c in mine], phantoms=phantoms, units=units, lead=_lead(mine[0])
        )
    return out


# --- the area under a curve --------------------------------------------------------------------


def curve_area(fractions: Sequence[float], values: Sequence[float]) -> float:
    """Mean height of a curve over log10(fraction): trapezoid area / range width.

    fractions: (F,) in (0, 1], values: (F,) the metric at each; NaN when any value is NaN; the
    value itself for a single fraction. In the metric's units (an MCC curve's area is an MCC).
    """
    f = np.asarray(fractions, dtype=float)
    v = np.asarray(values, dtype=float)
    order = np.argsort(f)
    f, v = f[order], v[order]
    if len(v) == 0 or np.isnan(v).any():
        return float("nan")
    if len(v) == 1:
        return float(v[0])
    x = np.log10(f)
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def _curves(points: Sequence[CurvePoint]) -> dict[tuple[str, str, str, str], dict[str, list]]:
    """(database, task, evaluation, metric) -> init -> points ordered by fraction."""
    out: dict[tuple[str, str, str, str], dict[str, list]] = {}
    for p in points:
        key = (p.ci.database, p.ci.task, p.evaluation, p.ci.metric)
        out.setdefault(key, {}).setdefault(p.ci.init, []).append(p)
    for inits in out.values():
        for ps in inits.values():
            ps.sort(key=lambda p: p.fraction)
    return out


def _estimate(p: CurvePoint) -> float:
    return p.ci.method.estimate if p.ci.method is not None else float("nan")


# --- tables ------------------------------------------------------------------------------------


def curve_table(points: Sequence[CurvePoint]) -> Table:
    rows = []
    for (db, task, ev, metric), inits in _curves(points).items():
        d = decimals_for(metric)
        for init, ps in inits.items():
            for p in ps:
                m = p.ci.method
                rows.append(
                    (
                        db, task, EVALUATION_WORDS.get(ev, ev), init, metric_label(metric),
                        f"{p.fraction:g}", f"{round(p.n_train, 1):g}", fmt_number(_estimate(p), d),
                        fmt_interval(m.interval, d) if m else "n/a", str(p.ci.n_seeds),
                    )
                )  # fmt: skip
    return Table(
        name="table_label_efficiency",
        title="Label efficiency: test metric per label fraction, evaluation and initialisation",
        columns=(
            "database", "task", "evaluation", "init", "metric", "fraction", "train images",
            "per-run mean", "95% CI (method)", "seeds",
        ),
        rows=tuple(rows),
        notes=(
            "Each fraction is a nested, class-stratified, patient-grouped subset of the train "
            "split, drawn per seed (and fold) and shared by every initialisation; validation and "
            "test images are the same at every fraction. Per-run mean and its method-level CI as "
            "in the test-metrics table (two-level over seeds and test patients; two-stage "
            "over seeds and folds with folds). Train images: the mean train-split size of the runs (a whole number where every run has it)."
        ),
    )  # fmt: skip


def area_table(points: Sequence[CurvePoint]) -> Table:
    rows = []
    for (db, task, ev, metric), inits in _curves(points).items():
        d = decimals_for(metric)
        ref = inits.get("random")
        ref_area = (
            curve_area([p.fraction for p in ref], [_estimate(p) for p in ref]) if ref else math.nan
        )
        for init, ps in inits.items():
            area = curve_area([p.fraction for p in ps], [_estimate(p) for p in ps])
            rows.append(
                (
                    db, task, EVALUATION_WORDS.get(ev, ev), init, metric_label(metric),
                    ", ".join(f"{p.fraction:g}" for p in ps), fmt_number(area, d),
                    "" if init == "random" else fmt_number(area - ref_area, d),
                )
            )  # fmt: skip
    return Table(
        name="table_label_efficiency_area",
        title="Area under each label-efficiency curve (mean height over log10 fraction)",
        columns=(
            "database", "task", "evaluation", "init", "metric", "fractions", "area",
            "area - random",
        ),
        rows=tuple(rows),
        notes=(
            "Trapezoid of the per-run means over log10(fraction), divided by the width of the "
            "range: the curve's mean height, in the metric's units. A summary without an "
            "interval; the verdicts per fraction carry the uncertainty."
        ),
    )  # fmt: skip


def verdict_table(le: LabelEfficiency) -> Table:
    rows = []
    for c in le.comparisons:
        r, m = c.row, c.row.method
        d = decimals_for(r.metric)
        rows.append(
            (
                r.database, r.task, EVALUATION_WORDS.get(c.evaluation, c.evaluation),
                f"{c.fraction:g}", f"{r.init} vs {r.reference}", metric_label(r.metric),
                fmt_number(m.estimate, d), fmt_interval(m.interval, d),
                fmt_number(m.detectable, d), fmt_p(m.p_value), fmt_p(r.method_holm_p), r.family,
                str(m.replicates), str(m.n_undefined_replicates), r.verdict_text,
            )
        )  # fmt: skip
    return Table(
        name="table_label_efficiency_verdicts",
        title="Pretrained vs random initialisation per label fraction and evaluation",
        columns=(
            "database", "task", "evaluation", "fraction", "comparison", "metric", "difference",
            "unadjusted 95% CI (method)", "detectable (80% power)", "p", "Holm p", "Holm family",
            "seeds", "seeds left out", "verdict",
        ),
        rows=tuple(rows),
        notes=(
            f"Method level, as in the main comparisons. Holm p: adjusted over the whole declared "
            f"family, every fraction x method x database x task x evaluation row with at least "
            f"{MIN_REPLICATES} seeds ({le.family} comparisons); the main report's verdicts "
            "(fine-tuning on the whole train split) are adjusted over their own family. "
            "Supported only when the CI excludes 0 and Holm p < 0.05. Detectable: the smallest "
            "difference each design detects with 80% power at two-sided alpha 0.05 before Holm."
        ),
    )  # fmt: skip


# --- figures -----------------------------------------------------------------------------------


def curve_figures(points: Sequence[CurvePoint], folder: Path) -> list[tuple[str, Path]]:
    """One PNG per (database, task, evaluation) with two fractions or more: the metric against
    the fraction (log x), one line per initialisation, method-level 95% CIs as error bars.
    Returns (caption, path)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from medssl.reporting.savefig import save_figure

    out = []
    for (db, task, ev, metric), inits in _curves(points).items():
        fracs = sorted({p.fraction for ps in inits.values() for p in ps})
        if len(fracs) < 2:  # one fraction is no curve (fraction_evaluations); tables keep it
            continue
        fig = Figure(figsize=(5.2, 3.6))
        ax = fig.subplots()
        for i, (init, ps) in enumerate(inits.items()):
            x = np.array([p.fraction for p in ps]) * (1 + 0.02 * (i - (len(inits) - 1) / 2))
            y = np.array([_estimate(p) for p in ps])
            lo = np.array([p.ci.method.interval.low if p.ci.method else np.nan for p in ps])
            hi = np.array([p.ci.method.interval.high if p.ci.method else np.nan for p in ps])
            err = np.vstack([np.nan_to_num(y - lo), np.nan_to_num(hi - y)])
            style = {"color": "0.3", "linestyle": "--"} if init == "random" else {}
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=init, **style)
        ax.set_xscale("log")
        ax.set_xticks(fracs, [f"{f:g}" for f in fracs])
        ax.minorticks_off()
        ax.set_xlabel("fraction of the training labels (log scale)")
        ax.set_ylabel(f"test {metric_label(metric)}")
        ax.set_title(f"{db} {task}: {EVALUATION_WORDS.get(ev, ev)}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        path = folder / f"label_efficiency_{db}_{task}_{ev}.png"
        save_figure(fig, path)
        caption = (
            f"{db} {task}, {EVALUATION_WORDS.get(ev, ev)}: test {metric_label(metric)} against "
            "the label fraction, per initialisation, with method-level 95% CIs"
        )
        out.append((caption, path))
    return out
