# Over 400 lines: both levels of a comparison and the sentences that state them read one row.
"""The report's statistics: per-model intervals, comparisons with a reference, verdicts.

Every comparison of a model with its reference (random init; or the source-only shortcut)
is made at two levels, and labelled so:

- **method level** (:mod:`medssl.stats.method`): the interval and p-value include the variance
  between training runs — on one split paired over seeds (the arms' runs of one seed share
  its split, fine-tuning seed and label subset; ``StatsSettings.paired=False`` for arms that
  do not) plus the test patients, with folds two-stage over seeds and folds. Verdicts come
  from this level only, Holm-adjusted across the family of comparisons that can be assessed
  (at least :data:`~medssl.stats.method.MIN_REPLICATES` seeds per arm; the family is named,
  with its size, beside each adjusted p); the rest read "not assessable". A difference within
  noise states the smallest difference its design detects (80% power, two-sided alpha 0.05
  before Holm: :mod:`medssl.stats.design`); seeds left out because the metric is undefined
  in either arm are counted in every row and sentence. Printed CIs are unadjusted.
- **fixed networks** (:mod:`medssl.stats.paired`): paired bootstrap over test patients and a
  permutation p-value for *these trained networks*, Holm-adjusted in a family of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
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
    PAIRED,
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
    detectable_words,
    fixed_network_verdict,
    left_out_words,
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
    # the arms' runs of one seed share its split, fine-tuning seed and label subset (the
    # benchmark's design): method-level differences are paired over seeds
    paired: bool = True


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
    family: str = ""  # the Holm family of method_holm_p, named with its size
    fixed_family: str = ""  # the Holm family of fixed_holm_p
    # the reference is pretrained too (an SSL encoder against weights you bring): the verdict
    # names both arms instead of saying "pretrained better"
    names_arms: bool = False

    @property
    def replicates(self) -> int:
        return self.method.replicates

    @property
    def verdict_text(self) -> str:
        """The verdict in words; with ``names_arms``: "supported: simclr better than imagenet"."""
        if self.names_arms and self.verdict.supported:
            side = "better" if self.verdict == Verdict.BETTER else "worse"
            return f"supported: {self.init} {side} than {self.reference}"
        return str(self.verdict)


def family_name(name: str, size: int) -> str:
    """``main comparisons, 18 tests``: a Holm family named with its size."""
    return f"{name}, {size} test{'s' if size != 1 else ''}"


def _holm_rows(
    rows: Sequence[ComparisonRow], alpha: float, family: str, preset: str | None = None
) -> tuple[list[ComparisonRow], int]:
    """``rows`` with Holm p-values, families and verdicts over ``rows`` as one family per
    level; method-level p-values of comparisons with fewer than MIN_REPLICATES replicates stay
    out of their family. ``preset`` given: the reasons of not-assessable rows are written."""
    ok = [r.replicates >= MIN_REPLICATES for r in rows]
    method_p = holm([r.method.p_value if a else np.nan for r, a in zip(rows, ok, strict=True)])
    fixed_p = holm([r.fixed.p_value if r.fixed is not None else np.nan for r in rows])
    size, fixed_size = int(sum(ok)), sum(r.fixed is not None for r in rows)
    out = []
    for r, mp, fp in zip(rows, method_p, fixed_p, strict=True):
        verdict = method_verdict(
            r.method.interval, float(mp), r.replicates, alpha=alpha,
            lower_is_better=r.metric in LOWER_IS_BETTER,
        )  # fmt: skip
        reason = r.reason
        if preset is not None:
            reason = (
                not_assessable_reason(
                    r.replicates, r.folds, preset, r.method.n_undefined_replicates
                )
                if verdict == Verdict.NOT_ASSESSABLE
                else ""
            )
        out.append(
            dataclasses.replace(
                r, method_holm_p=float(mp), fixed_holm_p=float(fp), verdict=verdict,
                reason=reason, family=family_name(family, size),
                fixed_family=family_name(f"{family}, these networks", fixed_size),
            )
        )  # fmt: skip
    return out, size


def holm_over(
    rows: Sequence[ComparisonRow], alpha: float, family: str = "comparisons"
) -> tuple[list[ComparisonRow], int]:
    """``rows`` with their Holm p-values and verdicts redone over ``rows`` as one family named
    ``family`` (a section whose comparisons were computed in groups: label fractions, transfer
    targets), and the family's size (the assessable comparisons). Method-level p-values of
    comparisons with fewer than MIN_REPLICATES replicates stay out of the family, as in
    :func:`compare`."""
    return _holm_rows(rows, alpha, family)


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
    only_inits: Collection[str] | None = None,
    family: str = "main comparisons",
) -> list[ComparisonRow]:
    """Every model other than ``reference`` (of ``only_inits``, when given) against
    ``reference`` on the same task and database, for each ``metrics[task]`` metric: one Holm
    family per level (module docstring), named ``family`` in every row. A reference in
    ``only_inits``' complement that is not random init (weights you bring, compared with the
    SSL encoders) gets verdicts that name both arms (``ComparisonRow.names_arms``)."""
    found: list[tuple[ModelKey, str, MethodResult, Comparison | None, int | None]] = []
    for key, pred in models.items():
        task, db, init = key
        if init == reference or (only_tasks is not None and task not in only_tasks):
            continue
        if only_inits is not None and init not in only_inits:
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
    rows = [
        ComparisonRow(
            task=key[0], database=key[1], init=key[2], reference=reference, metric=metric,
            method=method, method_holm_p=float("nan"), fixed=fixed, fixed_holm_p=float("nan"),
            verdict=Verdict.UNDEFINED, folds=folds, names_arms=only_inits is not None,
        )
        for key, metric, method, fixed, folds in found
    ]  # fmt: skip
    return _holm_rows(rows, settings.alpha, family, preset)[0]


def compare_with_brought(
    models: Mapping[ModelKey, Predictions],
    records: Sequence[Mapping[str, Any]],
    brought: Sequence[str],
    *,
    baseline: str,
    family: str = "comparisons with {name}",
    **kwargs: Any,
) -> list[ComparisonRow]:
    """Every SSL encoder (a model neither ``baseline`` nor brought) against each set of weights
    you brought, one Holm family per brought arm (``family`` formatted with its name): the
    reviewer's "and against ImageNet weights?", kept out of the main family so that adding a
    reference does not weaken the verdicts against random init. ``kwargs``: :func:`compare`'s."""
    ssl = {k[2] for k in models} - {baseline, *brought}
    out: list[ComparisonRow] = []
    for name in brought:
        out += compare(
            models, records, reference=name, only_inits=ssl, family=family.format(name=name),
            **kwargs,
        )  # fmt: skip
    return out


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
        seed=settings.seed, paired=settings.paired,
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


def design_words(row: ComparisonRow, unit: str = "patients") -> str:
    """What a comparison's method-level interval is over: its seeds (paired or not), folds or
    test patients, and the seeds left out as undefined."""
    m = row.method
    seeds = f"{m.replicates} seed{'s' if m.replicates != 1 else ''}"
    if row.folds:
        text = f"{m.runs} runs of {seeds} x {row.folds}-fold CV, two-stage (seeds, then folds)"
    elif m.method == PAIRED:
        text = f"{seeds} (paired) and the test {unit}"
    else:
        text = f"{seeds} per arm and the test {unit}"
    if m.n_undefined_replicates:
        text += f"; {left_out_words(m.replicates, m.n_undefined_replicates)}"
    return text


def verdict_words(row: ComparisonRow, *, why: bool = True) -> str:
    """The verdict, and for a difference not supported what its design detects."""
    if row.verdict == Verdict.NOISE:
        words = detectable_words(row.method.detectable, decimals_for(row.metric))
        return f"{row.verdict}: " + (words if why else words.split(" (80%")[0])
    return row.verdict_text


def verdict_sentence(row: ComparisonRow, *, phantoms: bool = False, unit: str = "patients") -> str:
    """One plain-language sentence: the method-level verdict first, the fixed networks after."""
    d = decimals_for(row.metric)
    m = row.method
    head = (
        f"{row.database} {row.task}, {metric_label(row.metric)}: {row.init} - {row.reference} = "
        f"{_signed(m.estimate, d)}"
    )
    if row.verdict == Verdict.NOT_ASSESSABLE:
        text = f"{head}: {row.reason}"
    elif row.verdict == Verdict.UNDEFINED:
        text = f"{head}: undefined (no value for these runs: {why_undefined(row.metric)})"
    else:
        text = (
            f"{head} (method-level unadjusted 95% CI {fmt_interval(m.interval, d)} over "
            f"{design_words(row, unit)}; {_p_text('Holm p', row.method_holm_p)} in "
            f"{row.family or 'its family'}): {verdict_words(row)}"
        )
    if row.fixed is not None:
        text += (
            f". For these trained networks: {_signed(row.fixed.difference.estimate, d)}, "
            f"unadjusted 95% CI {fmt_interval(row.fixed.difference, d)} over test {unit}, "
            f"{_p_text('Holm p', row.fixed_holm_p)} in {row.fixed_family or 'its family'}"
        )
    if phantoms:
        text = "On synthetic phantoms: " + text
    return text + "."


def summary_sentences(
    rows: Sequence[ComparisonRow],
    *,
    phantoms: Mapping[str, Any],
    units: Mapping[str, str],
    lead: str = "",
) -> list[str]:
    """One sentence per (database, task): every method's difference, its verdict, and for a
    difference not supported the effect its design detects; ``lead`` opens each sentence
    (e.g. the evaluation and label fraction)."""
    out = []
    for db, task, ref in dict.fromkeys((r.database, r.task, r.reference) for r in rows):
        group = [r for r in rows if (r.database, r.task, r.reference) == (db, task, ref)]
        d = decimals_for(group[0].metric)
        diff = f"SSL - {ref}" if group[0].names_arms else f"pretrained - {ref}"
        head = f"{lead}{db} {task} ({metric_label(group[0].metric)}, {diff})"
        assessable = [r for r in group if r.verdict != Verdict.NOT_ASSESSABLE]
        if assessable:
            parts = [
                f"{r.init} {_signed(r.method.estimate, d)} {fmt_interval(r.method.interval, d)} "
                f"{verdict_words(r, why=False)}"
                for r in group
            ]
            r0 = assessable[0]
            design = (
                f"{r0.method.replicates} seeds x {r0.folds} folds" if r0.folds
                else f"{r0.method.replicates} seeds, paired" if r0.method.method == PAIRED
                else f"{r0.method.replicates} seeds"
            )  # fmt: skip
            left = sum(r.method.n_undefined_replicates for r in group)
            if left:
                design += f"; {left} seed(s) left out where the metric is undefined in either arm"
            text = f"{head}, method-level unadjusted 95% CIs over {design}: " + "; ".join(parts)
            if any(r.verdict == Verdict.NOISE for r in group):
                text += " (detectable differences: 80% power, two-sided α 0.05 before Holm)"
        else:
            parts = [
                f"{r.init} {_signed(r.fixed.difference.estimate, d)} "
                f"{fmt_interval(r.fixed.difference, d)}"
                for r in group
                if r.fixed is not None
            ]
            text = (
                f"{head}: {group[0].reason}. For these trained networks only (unadjusted 95% CIs "
                f"over test {units.get(db, 'patients')}): " + "; ".join(parts)
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
            "two-stage interval over seeds and folds with folds). Undefined seeds are counted, "
            "not averaged."
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
                fmt_interval(m.interval, d), fmt_number(m.df, 1), fmt_number(m.detectable, d),
                fmt_p(m.p_value), fmt_p(c.method_holm_p), c.family, str(m.replicates),
                str(m.n_undefined_replicates), str(m.runs),
                (words or {}).get(c.verdict, c.verdict_text),
            )
        )  # fmt: skip
    return Table(
        name=name,
        title=title,
        columns=(
            "task", "database", "comparison", "metric", "model", "reference", "difference",
            "unadjusted 95% CI (method)", "df", "detectable (80% power)", "p", "Holm p",
            "Holm family", "seeds", "seeds left out", "runs", "verdict",
        ),
        rows=tuple(rows),
        notes=(
            "Method level: the interval and p-value include the variance between training runs. "
            "One split: paired over seeds (the variance of the per-seed differences, whose arms "
            "share split, fine-tuning seed and label subset) plus test patients (patient "
            "bootstrap), Welch-Satterthwaite t. Folds: two-stage variance, between seeds and "
            "within a seed across folds with the Nadeau-Bengio factor (Nadeau & Bengio 2003). "
            "The CI is unadjusted; Holm p: Holm-adjusted within the family named beside it (the "
            f"rows with at least {MIN_REPLICATES} seeds). Supported only when the CI excludes 0 "
            f"and Holm p < 0.05; with fewer than {MIN_REPLICATES} seeds per arm: not "
            "assessable. Detectable: the smallest difference the design detects with 80% power "
            "at two-sided alpha 0.05 before Holm (noncentral t at its SE and df). Seeds left "
            "out: seeds whose metric is undefined in either arm, counted, not averaged."
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
                c.fixed_family, str(fixed_verdict(c, alpha)), str(f.n_images),
                str(f.n_clusters), str(f.n_replicates),
            )
        )  # fmt: skip
    return Table(
        name=name,
        title=title,
        columns=(
            "task", "database", "comparison", "metric", "model", "reference", "difference",
            "unadjusted 95% CI (these networks)", "p", "Holm p", "Holm family",
            "for these networks", "images", "resampling units", "seeds",
        ),
        rows=tuple(rows),
        notes=(
            "For these trained networks only: paired percentile bootstrap over test patients "
            "(images where no patient id is published) and a two-sided paired permutation test "
            "swapping the two models' predictions per patient; seeds averaged inside each "
            "resample. Run-to-run variance does not enter, so this says nothing about the method. "
            "The CI is unadjusted; Holm p within the family named beside it."
        ),
    )  # fmt: skip
