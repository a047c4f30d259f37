"""The design planner of ``medssl benchmark --dry-run``: the seeds each comparison needs.

The variance components come from a finished benchmark, a pilot (``--set pilot=FOLDER``) or
by default this folder's earlier runs: its report's ``statistics.json`` holds, for every
method-level comparison (main, label fractions, transfer), the components of
:class:`medssl.stats.design.Components`. For each comparison the planner prints what the
pilot's seeds detect, and with ``--set target_effect=X`` the seeds that detect X
(:func:`medssl.stats.design.seeds_needed`) and what their runs cost on this machine: the
plan's per-run estimates (:mod:`medssl.tasks.estimates`) of one seed's runs of the
comparison (its two arms and the encoder's pretraining), times the seeds. The arithmetic is
:mod:`medssl.stats.design`; this module reads and prints.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medssl.artifacts import read_json
from medssl.errors import ConfigError
from medssl.runfiles import REPORT, RESULTS, STATISTICS
from medssl.stats.design import Components, seeds_needed
from medssl.stats.method import MIN_REPLICATES

MAX_SEEDS = 200  # the most seeds the planner considers


@dataclass(frozen=True)
class PilotComparison:
    """One method-level comparison of a pilot: what it compares and its components (None when
    the pilot had too few seeds to measure them)."""

    task: str
    database: str
    init: str
    reference: str
    metric: str
    evaluation: str
    fraction: float
    components: Components | None


def pilot_comparisons(statistics: dict[str, Any]) -> list[PilotComparison]:
    """The comparisons of a report's ``statistics.json``: main, label fractions, transfer."""

    def rows() -> Iterator[tuple[dict[str, Any], str, float]]:
        for r in statistics.get("comparisons") or []:
            yield r, "finetune", 1.0
        for c in (statistics.get("label_efficiency") or {}).get("comparisons") or []:
            if (c["evaluation"], c["fraction"]) != ("finetune", 1.0):  # the main ones again
                yield c["row"], c["evaluation"], float(c["fraction"])
        for c in (statistics.get("transfer") or {}).get("comparisons") or []:
            yield c["row"], c["evaluation"], 1.0

    out = []
    for r, evaluation, fraction in rows():
        d = (r.get("method") or {}).get("design")
        comps = None
        if d:
            comps = Components(
                tuple(d["per_seed"]), d["floor"], d["floor_df"], d["floor_per_seed"],
                d["seeds"], d.get("guarded", True),
            )  # fmt: skip
        out.append(
            PilotComparison(
                r["task"], r["database"], r["init"], r["reference"], r["metric"], evaluation,
                fraction, comps,
            )
        )  # fmt: skip
    return out


def read_pilot(folder: Path) -> list[PilotComparison]:
    """The comparisons of a finished benchmark folder; a named error when it has no report."""
    path = folder / REPORT / STATISTICS
    if not path.is_file():
        what = (
            f"build its report first: `medssl report {folder}`"
            if (folder / RESULTS).is_file()
            else "give a finished benchmark folder (one with report/statistics.json)"
        )
        raise ConfigError(f"pilot {folder}: no {REPORT}/{STATISTICS}; {what}")
    return pilot_comparisons(read_json(path))


_LABEL = re.compile(r"^(?P<method>.+) \((?P<data>[^()]+)\)$")


def _arm(label: str, database: str) -> tuple[str, str]:
    """(init, pretraining database) of a comparison's arm ("simclr (MG2)" in transfer)."""
    m = _LABEL.match(label)
    return (m["method"], m["data"]) if m else (label, database)


def seed_seconds(c: PilotComparison, runs: Sequence[Any]) -> float:
    """Estimated seconds of one seed's runs of comparison ``c`` in the plan (seed 0): both
    arms' evaluations (every fold) and the pretraining of their encoders."""
    arms = {_arm(c.init, c.database), _arm(c.reference, c.database)}
    mine = [
        r for r in runs
        if r.kind != "pretrain" and r.seed == 0 and r.database == c.database
        and r.task == c.task and r.evaluation == c.evaluation and r.fraction == c.fraction
        and (r.init, r.pretrain_data or r.database) in arms
    ]  # fmt: skip
    encoders = {r.encoder_run for r in mine if r.encoder_run}
    pre = [r for r in runs if r.kind == "pretrain" and r.run_id in encoders]
    return sum(r.state.estimate_s for r in mine + pre)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _name(c: PilotComparison) -> str:
    where = "" if (c.evaluation, c.fraction) == ("finetune", 1.0) else (
        f", {c.evaluation} at {c.fraction:g} of the labels"
    )  # fmt: skip
    return f"{c.database} {c.task} {c.metric}: {c.init} vs {c.reference}{where}"


def plan_text(
    cfg: Any, runs: Sequence[Any], out: Path, workers: int = 1, preset: str | None = None
) -> str:
    """The planner's lines for a benchmark config (``cfg.pilot``, ``cfg.target_effect``,
    ``cfg.seeds``), its planned ``runs`` (with estimates) and folder ``out``."""
    pilot = Path(cfg.pilot) if cfg.pilot else out
    preset = preset or cfg.preset or "<preset>"
    if not cfg.pilot and not (out / REPORT / STATISTICS).is_file():
        return (
            "design planner: no pilot (no finished benchmark here, no --set pilot=FOLDER), so "
            "no variance components to plan with. Measure them with a pilot: "
            f"`medssl benchmark --preset {preset} --seeds {MIN_REPLICATES} --out PILOT` "
            f"(the fewest seeds that estimate the seed-to-seed variance and give verdicts), "
            "then `--dry-run --set pilot=PILOT --set target_effect=0.05`."
        )
    target = cfg.target_effect
    lines = [f"design planner, variance components from {pilot}"
             + (f", target detectable effect {target:g} (80% power, two-sided α 0.05):"
                if target else " (--set target_effect=X for the seeds that detect X):")]  # fmt: skip
    widest = 0
    per_seed_matrix = sum(r.state.estimate_s for r in runs if r.seed == 0) / max(workers, 1)
    for c in read_pilot(pilot):
        name = _name(c)
        if c.components is None:
            lines.append(f"  {name}: no variance components (fewer than 2 seeds in the pilot)")
            continue
        comps = c.components
        now = comps.detectable(comps.seeds)
        planned = comps.detectable(cfg.seeds) if cfg.seeds >= 2 else float("nan")
        text = f"  {name}: the pilot's {comps.seeds} seeds detect ≥ {now:.3f}"
        if cfg.seeds != comps.seeds and cfg.seeds >= 2:
            text += f", {cfg.seeds} seeds (this plan) ≥ {planned:.3f}"
        if target:
            need = seeds_needed(comps, target, min_seeds=MIN_REPLICATES, max_seeds=MAX_SEEDS)
            if need is None:
                text += (
                    f"; {target:g} is out of reach with more seeds: the test set alone allows "
                    f"≥ {comps.limit():.3f} (more test patients: a larger test split or --folds)"
                )
            else:
                cost = seed_seconds(c, runs) * need / max(workers, 1)
                text += f"; {target:g} needs {need} seeds (~{_duration(cost)} for its runs here)"
                widest = max(widest, need)
        lines.append(text)
    if widest:
        lines.append(
            f"  every reachable comparison at once: --seeds {widest}, about "
            f"{_duration(per_seed_matrix * widest)} for the whole matrix on this machine "
            f"({_duration(per_seed_matrix)} per seed, {workers} run(s) at a time)"
        )
    return "\n".join(lines)
