# Over 400 lines: both levels of a comparison and the sentences that state them read one row.
"""The report's statistics: per-model intervals, comparisons with a reference, verdicts.

Every comparison of a model with its reference (random init; or the source-only shortcut)
is made at two levels, and labelled so:

- **method level** (:mod:`medssl.stats.method`): the interval and p-value include the variance
  between training runs — two-level over seeds and test patients on one split, or the
  corrected repeated k-fold t test with folds. Verdicts come from this level only, Holm-adjusted
  across the family of comparisons that can be assessed (at least
  :data:`~medssl.stats.method.MIN_REPLICATES` seeds per arm); the rest read "not assessable".
- **fixed networks** (:mod:`medssl.stats.paired`): paired bootstrap over test patients and a
  permutation p-value for *these trained networks*, Holm-adjusted in a family of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medssl.errors import DataError
from medssl.metrics.undefined import why_undefined
from medssl.reporting.inputs import ModelKey, folds_of, run_values, split_sizes
from medssl.reporting.tables import (
    Table,
    decimals_for,
    fmt_interval,
    fmt_number,
    fmt_p,
    metric_label,
)
from medssl.stats.bootstrap import Interval, metric_ci
from medssl.stats.estimands import LOWER_IS_BETTER, Predictions, undefined_replicates
from medssl.stats.method import (
    MIN_REPLICATES,
    MethodResult,
    corrected_cv_comparison,
    corrected_cv_interval,
    two_level_comparison,
    two_level_interval,
)
from medssl.stats.multiple import holm
from medssl.stats.paired import Comparison, paired_comparison
from medssl.stats.verdicts import (
    Verdict,
    fixed_network_verdict,
    method_verdict,
    not_assessable_reason,
)


@dataclass(frozen=True)
class StatsSettings:
    """Resampling settings (the report's ``ReportOptions`` carries them)."""

    n_resamples: int = 2000
    n_permutations: int = 2000
    seed: int = 0
    confidence: float = 0.95
    alpha: float = 0.05


# --- per-model intervals -----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCI:
    """One model's test metric: fixed-network bootstrap CI and the method-level interval."""

    task: str
    database: str
    init: str
    metric: str
    interval: Interval  # fixed networks: bootstrap over test patients (images), seeds averaged
    n_seeds: int
    n_patients: int
    method: MethodResult | None = None
    n_undefined: int = 0  # seeds whose metric is undefined (left out of the estimate)


def model_intervals(
    models: Mapping[ModelKey, Predictions],
    records: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Sequence[str]],
    settings: StatsSettings,
    notes: list[str],
) -> list[ModelCI]:
    """Fixed-network and method-level intervals of every ``metrics[task]`` metric of every model."""
    out = []
    for key, pred in models.items():
        task, db, init = key
        for metric in metrics.get(task, []):
            if metric not in pred.metrics:
                notes.append(
                    f"{task}/{db}/{init}: no per-image {metric!r} in the predictions; no CI"
                )
                continue
            iv = metric_ci(
                pred, metric, n_resamples=settings.n_resamples,
                confidence=settings.confidence, seed=settings.seed,
            )  # fmt: skip
            out.append(
                ModelCI(
                    task=task, database=db, init=init, metric=metric, interval=iv,
                    n_seeds=len(set(pred.replicate.tolist())),
                    n_patients=len(set(pred.clusters.tolist())),
                    method=_method_interval(pred, records, key, metric, settings),
                    n_undefined=undefined_replicates(pred, metric),
                )
            )  # fmt: skip
    return out


def _method_interval(
    pred: Predictions, records, key: ModelKey, metric: str, settings: StatsSettings
) -> MethodResult:
    if folds_of(records, key):
        n_train, n_test = split_sizes(records, key)
        return corrected_cv_interval(
            run_values(records, key, metric), n_train=n_train, n_test=n_test, metric=metric,
            confidence=settings.confidence,
        )  # fmt: skip
    return two_level_interval(
        pred, metric, n_resamples=settings.n_resamples, confidence=settings.confidence,
        seed=settings.seed,
    )  # fmt: skip


# --- comparisons -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    """A model against its reference at both levels, with the verdict (method level only)."""

    task: str
    database: str
    init: str
    reference: str
    metric: str
    method: MethodResult
    method_holm_p: float
    fixed: Comparison | None
    fixed_holm_p: float
    verdict: Verdict
    folds: int | None = None
    reason: str = ""  # why a verdict is not assessable, with the command that fixes it

    @property
    def replicates(self) -> int:
        return self.method.replicates


def holm_over(rows: Sequence[ComparisonRow], alpha: float) -> tuple[list[ComparisonRow], int]:
    """``rows`` with their Holm p-values and verdicts redone over ``rows`` as one family (a
    section whose comparisons were computed in groups: label fractions, transfer targets), and
    the family's size (the assessable comparisons). Method-level p-values of comparisons with
    fewer than MIN_REPLICATES replicates stay out of the family, as in :func:`compare`."""
    ok = [r.replicates >= MIN_REPLICATES for r in rows]
    method_p = holm([r.method.p_value if a else np.nan for r, a in zip(rows, ok, strict=True)])
    fixed_p = holm([r.fixed.p_value if r.fixed is not None else np.nan for r in rows])
    out = []
    for r, mp, fp in zip(rows, method_p, fixed_p, strict=True):
        verdict = method_verdict(
            r.method.interval, float(mp), r.replicates, alpha=alpha,
            lower_is_better=r.metric in LOWER_IS_BETTER,
        )  # fmt: skip
        out.append(
            dataclasses.replace(r, method_holm_p=float(mp), fixed_holm_p=float(fp), verdict=verdict)
        )
    return out, int(sum(ok))


def compare(
    models: Mapping[ModelKey, Predictions],
    records: Sequence[Mapping[str, Any]],
    *,
    reference: str,
    metrics: Mapping[str, Sequence[str]],
    settings: StatsSettings,
    notes: list[str],
    preset: str = "<preset>",
    only_tasks: Sequence[str] | None = None,
) -> list[ComparisonRow]:
    """Every model other than ``reference`` against ``reference`` on the same task and database,
    for each ``metrics[task]`` metric: one Holm family per level (module docstring)."""
    found: list[tuple[ModelKey, str, MethodResult, Comparison | None, int | None]] = []
    for key, pred in models.items():
        task, db, init = key
        if init == reference or (only_tasks is not None and task not in only_tasks):
            continue
        base = models.get((task, db, reference))
        if base is None:
            notes.append(f"{task}/{db}/{init}: no {reference!r} predictions; not compared")
            continue
        for metric in metrics.get(task, []):
            if metric not in pred.metrics or metric not in base.metrics:
                notes.append(
                    f"{task}/{db}/{init}: {metric!r} missing from the predictions; not compared"
                )
                continue
            try:
                fixed = paired_comparison(
                    pred, base, metric, n_resamples=settings.n_resamples,
                    n_permutations=settings.n_permutations, confidence=settings.confidence,
                    seed=settings.seed,
                )  # fmt: skip
                folds = folds_of(records, key)
                method = _method_comparison(
                    pred, base, records, key, reference, metric, folds, settings
                )
            except DataError as e:
                notes.append(f"{task}/{db}/{init} vs {reference}: {e}")
                continue
            if fixed.n_unpaired:
                notes.append(
                    f"{task}/{db}/{init} vs {reference}: {fixed.n_unpaired} prediction rows without a "
                    "partner (different test images or seeds) were left out of the paired comparison"
                )
            found.append((key, metric, method, fixed, folds))
    assessable = [m.replicates >= MIN_REPLICATES for _, _, m, _, _ in found]
    method_p = holm(
        [m.p_value if ok else np.nan for (_, _, m, _, _), ok in zip(found, assessable, strict=True)]
    )
    fixed_p = holm([f.p_value if f is not None else np.nan for _, _, _, f, _ in found])
    rows = []
    for (key, metric, method, fixed, folds), mp, fp in zip(found, method_p, fixed_p, strict=True):
        verdict = method_verdict(
            method.interval, float(mp), method.replicates, alpha=settings.alpha,
            lower_is_better=metric in LOWER_IS_BETTER,
        )  # fmt: skip
        reason = (
            not_assessable_reason(method.replicates, folds, preset)
            if verdict == Verdict.NOT_ASSESSABLE
            else ""
        )
        rows.append(
            ComparisonRow(
                task=key[0], database=key[1], init=key[2], reference=reference, metric=metric,
                method=method, method_holm_p=float(mp), fixed=fixed, fixed_holm_p=float(fp),
                verdict=verdict, folds=folds, reason=reason,
            )
        )  # fmt: skip
    return rows


def _method_comparison(
    pred, base, records, key, reference, metric, folds, settings
) -> MethodResult:
    if folds:
        n_train, n_test = split_sizes(records, key)
        ref_key = (key[0], key[1], reference)
        return corrected_cv_comparison(
            run_values(records, key, metric), run_values(records, ref_key, metric),
            n_train=n_train, n_test=n_test, metric=metric, confidence=settings.confidence,
        )  # fmt: skip
    return two_level_comparison(
        pred, base, metric, n_resamples=settings.n_resamples, confidence=settings.confidence,
        seed=settings.seed,
    )  # fmt: skip


def fixed_verdict(row: ComparisonRow, alpha: float) -> Verdict:
    """The rule of the report applied to the fixed-network result (for these networks)."""
    if row.fixed is None:
        return Verdict.UNDEFINED
    return fixed_network_verdict(
        row.fixed.difference, row.fixed_holm_p, alpha=alpha,
        lower_is_better=row.metric in LOWER_IS_BETTER,
    )  # fmt: skip


# --- sentences ---------------------------------------------------------------------------------


def _signed(x: float, d: int) -> str:
    s = fmt_number(x, d)
    return s if s.startswith(("-", "n/a")) or s.strip("0.") == "" else "+" + s


def _p_text(name: str, p: float) -> str:
    text = fmt_p(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def verdict_sentence(row: ComparisonRow, *, phantoms: bool = False, unit: str = "patients") -> str:
    """One plain-language sentence: the method-level verdict first, the fixed networks after."""
    d = decimals_for(row.metric)
    m = row.method
    head = (
        f"{row.database} {row.task}, {metric_label(row.metric)}: {row.init} - {row.reference} = "
        f"{_signed(m.estimate, d)}"
    )
    design = (
        f"{m.runs} runs of {m.replicates} seeds x {row.folds}-fold CV, corrected t"
        if row.folds
        else f"{m.replicates} seed{'s' if m.replicates != 1 else ''} and the test {unit}"
    )
    if row.verdict == Verdict.NOT_ASSESSABLE:
        text = f"{head}: {row.reason}"
    elif row.verdict == Verdict.UNDEFINED:
        text = f"{head}: undefined (no value for these runs: {why_undefined(row.metric)})"
    else:
        text = (
            f"{head} (method-level 95% CI {fmt_interval(m.interval, d)} over {design}; "
            f"{_p_text('Holm p', row.method_holm_p)}): {row.verdict}"
        )
    if row.fixed is not None:
        text += (
            f". For these trained networks: {_signed(row.fixed.difference.estimate, d)}, "
            f"95% CI {fmt_interval(row.fixed.difference, d)} over test {unit}, "
            f"{_p_text('Holm p', row.fixed_holm_p)}"
        )
    if phantoms:
        text = "On synthetic phantoms: " + text
    return text + "."


def summary_sentences(
    rows: Sequence[ComparisonRow], *, phantoms: Mapping[str, Any], units: Mapping[str, str]
) -> list[str]:
    """One sentence per (database, task): every method's difference, then the verdicts."""
    out = []
    for db, task in dict.fromkeys((r.database, r.task) for r in rows):
        group = [r for r in rows if (r.database, r.task) == (db, task)]
        d = decimals_for(group[0].metric)
        head = f"{db} {task} ({metric_label(group[0].metric)}, pretrained - random)"
        assessable = [r for r in group if r.verdict != Verdict.NOT_ASSESSABLE]
        if assessable:
            parts = [
                f"{r.init} {_signed(r.method.estimate, d)} {fmt_interval(r.method.interval, d)} "
                f"{r.verdict}"
                for r in group
            ]
            r0 = assessable[0]
            design = (
                f"{r0.method.replicates} seeds x {r0.folds} folds" if r0.folds
                else f"{r0.method.replicates} seeds"
            )  # fmt: skip
            text = f"{head}, method-level 95% CIs over {design}: " + "; ".join(parts)
        else:
            parts = [
                f"{r.init} {_signed(r.fixed.difference.estimate, d)} "
                f"{fmt_interval(r.fixed.difference, d)}"
                for r in group
                if r.fixed is not None
            ]
            text = (
                f"{head}: {group[0].reason}. For these trained networks only (95% CIs over test "
                f"{units.get(db, 'patients')}): " + "; ".join(parts)
            )
        if db in phantoms:
            text = "On synthetic phantoms: " + text
        out.append(text + ".")
    return out


# --- tables ------------------------------------------------------------------------------------


def model_ci_table(items: Sequence[ModelCI]) -> Table:
    rows = []
    for m in items:
        d = decimals_for(m.metric)
        method = m.method
        rows.append(
            (
                m.task, m.database, m.init, metric_label(m.metric),
                fmt_number(m.interval.estimate, d), fmt_interval(m.interval, d),
                fmt_number(method.estimate, d) if method else "n/a",
                fmt_interval(method.interval, d) if method else "n/a",
                str(m.n_seeds), str(m.interval.n), str(m.n_patients), str(m.n_undefined),
            )
        )  # fmt: skip
    return Table(
        name="table_test_bootstrap",
        title="Test metrics of each model: for these trained networks, and for the method",
        columns=(
            "task", "database", "init", "metric", "pooled estimate", "95% CI (these networks)",
            "per-run mean", "95% CI (method)", "seeds", "images", "resampling units", "undefined seeds",
        ),
        rows=tuple(rows),
        notes=(
            "Pooled estimate: mean over seeds of the metric on each seed's test predictions "
            "(pooled over folds); its CI is the percentile cluster bootstrap over test patients "
            "(images where no patient id is published), the same resample for every seed: it "
            "describes these trained networks. Per-run mean: mean of the runs' test metrics (per "
            "fold with folds, the estimand of tables 6.1/6.2); its method-level CI adds the "
            "variance between runs (two-level over seeds and test patients on one split; the "
            "corrected repeated k-fold t with folds). Undefined seeds are counted, not averaged."
        ),
    )  # fmt: skip


SHORTCUT_WORDS = {
    Verdict.BETTER: "beats the shortcut",
    Verdict.WORSE: "worse than the shortcut",
    Verdict.NOISE: "does not beat the shortcut",
}
"""The verdicts of a comparison with the source-only shortcut, in its own words."""


def comparison_table(
    items: Sequence[ComparisonRow],
    *,
    name: str,
    title: str,
    words: Mapping[Verdict, str] | None = None,
) -> Table:
    """Method-level comparisons with their verdicts (``words`` rename them, e.g. for the
    shortcut)."""
    rows = []
    for c in items:
        d = decimals_for(c.metric)
        m = c.method
        rows.append(
            (
                c.task, c.database, f"{c.init} vs {c.reference}", metric_label(c.metric),
                fmt_number(m.a, d), fmt_number(m.b, d), fmt_number(m.estimate, d),
                fmt_interval(m.interval, d), fmt_number(m.df, 1), fmt_p(m.p_value),
                fmt_p(c.method_holm_p), str(m.replicates), str(m.runs),
                (words or {}).get(c.verdict, str(c.verdict)),
            )
        )  # fmt: skip
    return Table(
        name=name,
        title=title,
        columns=(
            "task", "database", "comparison", "metric", "model", "reference", "difference",
            "95% CI (method)", "df", "p", "Holm p", "seeds", "runs", "verdict",
        ),
        rows=tuple(rows),
        notes=(
            "Method level: the interval and p-value include the variance between training runs. "
            "One split: two-level variance over seeds (between-run, each arm) and test patients "
            "(patient bootstrap), Welch-Satterthwaite t. Folds: corrected repeated k-fold t test "
            "(Nadeau & Bengio 2003; Bouckaert & Frank 2004). Holm p: Holm-adjusted over the rows "
            f"with at least {MIN_REPLICATES} seeds. Supported only when the CI excludes 0 and "
            f"Holm p < 0.05; with fewer than {MIN_REPLICATES} seeds per arm: not assessable."
        ),
    )  # fmt: skip


def fixed_comparison_table(
    items: Sequence[ComparisonRow], alpha: float, *, name: str, title: str
) -> Table:
    """The same comparisons for these trained networks (no run-to-run variance)."""
    rows = []
    for c in items:
        if c.fixed is None:
            continue
        d = decimals_for(c.metric)
        f = c.fixed
        rows.append(
            (
                c.task, c.database, f"{c.init} vs {c.reference}", metric_label(c.metric),
                fmt_number(f.a, d), fmt_number(f.b, d), fmt_number(f.difference.estimate, d),
                fmt_interval(f.difference, d), fmt_p(f.p_value), fmt_p(c.fixed_holm_p),
                str(fixed_verdict(c, alpha)), str(f.n_images), str(f.n_clusters), str(f.n_replicates),
            )
        )  # fmt: skip
    return Table(
        name=name,
        title=title,
        columns=(
            "task", "database", "comparison", "metric", "model", "reference", "difference",
            "95% CI (these networks)", "p", "Holm p", "for these networks", "images",
            "resampling units", "seeds",
        ),
        rows=tuple(rows),
        notes=(
            "For these trained networks only: paired percentile bootstrap over test patients "
            "(images where no patient id is published) and a two-sided paired permutation test "
            "swapping the two models' predictions per patient; seeds averaged inside each "
            "resample. Run-to-run variance does not enter, so this says nothing about the method."
        ),
    )  # fmt: skip
