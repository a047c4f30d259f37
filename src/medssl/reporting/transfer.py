"""The pretraining-data x target-database matrix: the modality question on shared test images.

The thesis asks whether pretraining on ultrasound and mammography together (USMG3) helps or
hurts, but each encoder is fine-tuned and tested on its own database, so pretraining data and
test set are confounded. With the benchmark's ``transfer: true`` every encoder is also
evaluated on the other databases' finetuning splits (records whose ``pretrain_data`` is not
their ``database``). Per task and evaluation (whole train split) this module gives:

- **the matrix**: rows = (method, pretraining database) and random init, columns = target
  databases, cells = the method-level estimate and 95% CI of the primary test metric
  (:func:`medssl.reporting.comparisons.model_intervals`);
- **verdicts**: on each target, every encoder pretrained elsewhere against the same method
  pretrained on the target's own database, paired on the target's test images and seeds
  (:func:`medssl.reporting.comparisons.compare`), e.g. "USMG3 vs US1 pretraining on US1"
  and "USMG3 vs MG2 pretraining on MG2"; Holm over every such comparison at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medssl.reporting.comparisons import (
    ComparisonRow,
    ModelCI,
    StatsSettings,
    compare,
    design_words,
    holm_over,
    model_intervals,
)
from medssl.reporting.inputs import is_in_domain, read_predictions
from medssl.reporting.label_efficiency import EVALUATION_WORDS
from medssl.reporting.tables import (
    Table,
    decimals_for,
    fmt_interval,
    fmt_number,
    fmt_p,
    metric_label,
)
from medssl.stats.method import MIN_REPLICATES
from medssl.stats.verdicts import Verdict, detectable_words

WORDS = {
    Verdict.BETTER: "supported: better than in-domain pretraining",
    Verdict.WORSE: "supported: worse than in-domain pretraining",
    Verdict.NOISE: "within noise",
}
"""The verdicts of an encoder pretrained elsewhere against in-domain pretraining."""


@dataclass(frozen=True)
class Cell:
    evaluation: str
    method: str  # the encoder's name (random for random init)
    pretrain_data: str  # the database it was pretrained on ("" for random init)
    ci: ModelCI  # on ci.database, the target


@dataclass(frozen=True)
class TransferComparison:
    evaluation: str
    method: str
    pretrain_data: str  # the other database
    row: ComparisonRow  # init "<method> (<pretrain_data>)" vs "<method> (<target>)"


@dataclass
class Transfer:
    cells: list[Cell] = field(default_factory=list)
    comparisons: list[TransferComparison] = field(default_factory=list)
    family: int = 0

    def tables(self) -> list[Table]:
        return [matrix_table(self.cells), verdict_table(self)]


def shows_transfer(records: Sequence[Mapping[str, Any]]) -> bool:
    return any(not is_in_domain(r) for r in records)


def _label(method: str, pretrain_data: str) -> str:
    return method if not pretrain_data else f"{method} ({pretrain_data})"


def transfer_matrix(
    run_dir: Path,
    records: Sequence[Mapping[str, Any]],
    *,
    manifests: Mapping[str, list[dict[str, str]]],
    baseline: str,
    metrics: Mapping[str, Sequence[str]],
    settings: StatsSettings,
    notes: list[str],
    preset: str = "<preset>",
    brought: Collection[str] = (),
) -> Transfer:
    """The matrix and its verdicts from the records at fraction 1 (module docstring); the
    arms of weights you brought (``brought``) have no pretraining database: rows of their
    own, like random init."""
    out = Transfer()
    found: list[tuple[str, str, str, ComparisonRow]] = []
    whole = [r for r in records if float(r["fraction"]) == 1.0]
    for evaluation in dict.fromkeys(r["evaluation"] for r in whole):
        origin: dict[str, tuple[str, str]] = {}
        sub = []
        for r in whole:
            if r["evaluation"] != evaluation:
                continue
            unpretrained = r["init"] == baseline or r["init"] in brought
            source = "" if unpretrained else (r["pretrain_data"] or r["database"])
            label = _label(r["init"], source)
            origin[label] = (r["init"], source)
            sub.append({**r, "init": label})
        preds = read_predictions(run_dir, sub, manifests=manifests)
        mine = list(preds.notes)
        for ci in model_intervals(preds.models, sub, metrics, settings, mine):
            method, source = origin[ci.init]
            out.cells.append(Cell(evaluation, method, source, ci))
        for task, target, label in preds.models:
            method, source = origin[label]
            if not source or source == target:
                continue
            ref = _label(method, target)
            pair = {
                k: preds.models[k]
                for k in ((task, target, label), (task, target, ref))
                if k in preds.models
            }
            rows = compare(
                pair, sub, reference=ref, metrics=metrics, settings=settings, notes=mine,
                preset=preset,
            )  # fmt: skip
            found += [(evaluation, method, source, r) for r in rows]
        notes += [f"transfer, {evaluation}: {n}" for n in mine]
    rows, out.family = holm_over([r for *_, r in found], settings.alpha, "transfer comparisons")
    for (evaluation, method, source, _), row in zip(found, rows, strict=True):
        out.comparisons.append(TransferComparison(evaluation, method, source, row))
    return out


def verdict_sentences(t: Transfer, *, phantoms: Mapping[str, Any]) -> list[str]:
    out = []
    for c in t.comparisons:
        r, m = c.row, c.row.method
        d = decimals_for(r.metric)
        head = (
            f"{r.task}, {EVALUATION_WORDS.get(c.evaluation, c.evaluation)}, on {r.database}'s "
            f"test images: {c.method} pretrained on {c.pretrain_data} vs on {r.database}, "
            f"{metric_label(r.metric)} {fmt_number(m.estimate, d)}"
        )
        if r.verdict == Verdict.NOT_ASSESSABLE:
            text = f"{head}: {r.reason}"
        else:
            words = WORDS.get(r.verdict, str(r.verdict))
            if r.verdict == Verdict.NOISE:
                words += ": " + detectable_words(m.detectable, d)
            text = (
                f"{head} (method-level unadjusted 95% CI {fmt_interval(m.interval, d)} over "
                f"{design_words(r)}; Holm p {fmt_p(r.method_holm_p)} in {r.family}): {words}"
            )
        out.append(("On synthetic phantoms: " if r.database in phantoms else "") + text + ".")
    return out


def matrix_table(cells: Sequence[Cell]) -> Table:
    targets = list(dict.fromkeys(c.ci.database for c in cells))
    index: dict[tuple[str, str, str, str, str], Cell] = {}
    rows_of: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for c in cells:
        group = (c.ci.task, c.evaluation, c.ci.metric)
        index[(*group, _label(c.method, c.pretrain_data), c.ci.database)] = c
        keys = rows_of.setdefault(group, [])
        if (c.method, c.pretrain_data) not in keys:
            keys.append((c.method, c.pretrain_data))
    rows = []
    for (task, ev, metric), keys in rows_of.items():
        d = decimals_for(metric)
        keys = sorted(keys, key=lambda k: (k[1] != "", k[0], k[1]))  # random first
        for method, source in keys:
            cells_ = []
            for target in targets:
                c = index.get((task, ev, metric, _label(method, source), target))
                m = c.ci.method if c else None
                cells_.append(
                    f"{fmt_number(m.estimate, d)} {fmt_interval(m.interval, d)}" if m else ""
                )
            rows.append(
                (task, EVALUATION_WORDS.get(ev, ev), metric_label(metric), method,
                 source or "(none)", *cells_)
            )  # fmt: skip
    return Table(
        name="table_transfer_matrix",
        title="Pretraining data x target database: test metric on each target's test images",
        columns=("task", "evaluation", "metric", "init", "pretrained on", *targets),
        rows=tuple(rows),
        notes=(
            "Each column is one target database's test images, shared by every row, so rows "
            "compare pretraining data on the same test set. Cells: per-run mean and its "
            "method-level 95% CI (two-level over seeds and test patients; two-stage over "
            "seeds and folds with folds), on the whole train split of the target."
        ),
    )


def verdict_table(t: Transfer) -> Table:
    rows = []
    for c in t.comparisons:
        r, m = c.row, c.row.method
        d = decimals_for(r.metric)
        rows.append(
            (
                r.task, EVALUATION_WORDS.get(c.evaluation, c.evaluation), r.database, c.method,
                f"{c.pretrain_data} vs {r.database}", metric_label(r.metric),
                fmt_number(m.estimate, d), fmt_interval(m.interval, d),
                fmt_number(m.detectable, d), fmt_p(m.p_value), fmt_p(r.method_holm_p), r.family,
                str(m.replicates), str(m.n_undefined_replicates),
                WORDS.get(r.verdict, str(r.verdict)),
            )
        )  # fmt: skip
    return Table(
        name="table_transfer_verdicts",
        title="Pretraining elsewhere vs on the target's own database, on the target's test images",
        columns=(
            "task", "evaluation", "target", "method", "pretraining data", "metric",
            "difference", "unadjusted 95% CI (method)", "detectable (80% power)", "p", "Holm p",
            "Holm family", "seeds", "seeds left out", "verdict",
        ),
        rows=tuple(rows),
        notes=(
            "Method level, paired on the target's test images and seeds. Holm p: adjusted over "
            f"every row with at least {MIN_REPLICATES} seeds ({t.family} comparisons). "
            "Supported only when the CI excludes 0 and Holm p < 0.05. Detectable: the smallest "
            "difference each design detects with 80% power at two-sided alpha 0.05 before Holm."
        ),
    )  # fmt: skip
