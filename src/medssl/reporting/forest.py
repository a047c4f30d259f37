"""The forest plot: every pretrained-minus-random difference with its 95% CI, at a glance.

One panel per task (its primary metric), one row per (database, method), grouped by database,
the zero line marked. A row shows its method-level interval (filled marker); where that is
not assessable (fewer than three seeds per arm) it shows the fixed-network interval instead,
hollow and grey, labelled "these networks only", so a reader never mistakes it for a verdict.
A difference within noise carries a grey band at +-X behind it: X is the smallest difference its
design detects with 80% power at two-sided alpha 0.05 (``MethodResult.detectable``), so a
short interval inside a wide band reads "no difference detected", not "no difference".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from medssl.reporting.comparisons import ComparisonRow
from medssl.reporting.tables import metric_label
from medssl.stats.verdicts import Verdict

COLOURS = {
    Verdict.BETTER: "#1b7837",
    Verdict.WORSE: "#b2182b",
    Verdict.NOISE: "#2166ac",
}


def _interval(row: ComparisonRow) -> tuple[float, float, float, bool]:
    """(estimate, low, high, method level?) of a row; NaNs when nothing is known."""
    iv = row.method.interval
    if math.isfinite(iv.low) and math.isfinite(iv.high) and row.verdict != Verdict.NOT_ASSESSABLE:
        return iv.estimate, iv.low, iv.high, True
    if row.fixed is not None:
        f = row.fixed.difference
        return f.estimate, f.low, f.high, False
    return iv.estimate, math.nan, math.nan, False


def detectable_band(row: ComparisonRow) -> float:
    """The half-width of the band drawn behind a row: its detectable effect where the
    difference is within noise at the method level, else NaN (no band)."""
    if row.verdict != Verdict.NOISE:
        return math.nan
    return row.method.detectable


def forest_plot(rows: Sequence[ComparisonRow], path) -> bool:
    """Draw the forest plot of ``rows`` to ``path`` (PNG); False when there is nothing to draw."""
    tasks = list(dict.fromkeys(r.task for r in rows))
    if not tasks:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from medssl.reporting.savefig import save_figure

    n_rows = max(sum(r.task == t for r in rows) for t in tasks)
    dbs = list(dict.fromkeys(r.database for r in rows))
    fig = Figure(figsize=(4.2 * len(tasks) + 1.5, 0.42 * (n_rows + len(dbs)) + 1.6))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    hollow_used = band_used = False
    for ax, task in zip(axes, tasks, strict=True):
        mine = [r for r in rows if r.task == task]
        labels, y, ticks = [], 0.0, []
        for db in dbs:
            group = [r for r in mine if r.database == db]
            if not group:
                continue
            for r in group:
                est, low, high, method_level = _interval(r)
                colour = COLOURS.get(r.verdict, "#777777") if method_level else "#999999"
                band = detectable_band(r)
                if math.isfinite(band):
                    ax.fill_betweenx([y - 0.3, y + 0.3], -band, band, color="#d9d9d9", lw=0,
                                     zorder=0)  # fmt: skip
                    band_used = True
                if math.isfinite(low) and math.isfinite(high):
                    ax.plot([low, high], [y, y], color=colour, lw=2)
                if math.isfinite(est):
                    ax.plot(
                        est, y, "o", color=colour, ms=7,
                        markerfacecolor=colour if method_level else "white",
                    )  # fmt: skip
                hollow_used |= not method_level
                labels.append(f"{db}  {r.init}")
                ticks.append(y)
                y -= 1
            y -= 0.6  # a gap between databases
        ax.axvline(0.0, color="black", lw=1)
        ax.set_yticks(ticks, labels)
        metric = metric_label(mine[0].metric) if mine else ""
        ax.set_xlabel(f"pretrained - random ({metric})")
        ax.set_title(f"{task}: {metric}")
        ax.grid(True, axis="x", alpha=0.3)
    note = "filled: method-level 95% CI (runs and test patients)"
    if hollow_used:
        note += "; hollow grey: these networks only (not assessable: fewer than 3 seeds)"
    if band_used:
        note += "; grey band: ± the difference each design detects (80% power), none detected"
    fig.suptitle("Pretrained minus random initialisation, 95% CIs", fontsize=11)
    fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    save_figure(fig, path)
    return True
