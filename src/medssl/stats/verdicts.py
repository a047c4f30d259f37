"""Verdicts: what a comparison of a pretrained model with its baseline allows one to say.

The verdict about a *method* comes from the method-level result alone
(:mod:`medssl.stats.method`, whose interval carries the variance between training runs):

- ``not assessable`` with fewer than :data:`~medssl.stats.method.MIN_REPLICATES` independent
  replicates (seeds) per arm: one run per arm cannot tell a method's effect from the luck of a
  seed (on real BUSI one model's seed-to-seed MCC SD is about 0.14);
- ``supported: pretrained better / worse`` when the method-level CI excludes 0 *and* its
  Holm-adjusted p-value (Holm 1979, over the declared family of comparisons) is below alpha;
- ``within noise`` otherwise; ``undefined`` when the metric has no value.

The fixed-network comparison (:mod:`medssl.stats.paired`) gets the same wording through
:func:`fixed_network_verdict`, always labelled "for these trained networks": it says whether
*these two networks* differ on patients like the test patients, not whether the method helps.
"""

from __future__ import annotations

import math
from enum import StrEnum

from medssl.stats.bootstrap import Interval
from medssl.stats.method import MIN_REPLICATES


class Verdict(StrEnum):
    BETTER = "supported: pretrained better"
    WORSE = "supported: pretrained worse"
    NOISE = "within noise"
    NOT_ASSESSABLE = "not assessable"
    UNDEFINED = "undefined"

    @property
    def supported(self) -> bool:
        return self in (Verdict.BETTER, Verdict.WORSE)


def _direction(iv: Interval, adjusted_p: float, alpha: float, lower_is_better: bool) -> Verdict:
    if math.isnan(iv.estimate) or math.isnan(iv.low) or math.isnan(adjusted_p):
        return Verdict.UNDEFINED
    if not iv.covers(0.0) and adjusted_p < alpha:
        better = (iv.estimate < 0) if lower_is_better else (iv.estimate > 0)
        return Verdict.BETTER if better else Verdict.WORSE
    return Verdict.NOISE


def method_verdict(
    interval: Interval,
    adjusted_p: float,
    replicates: int,
    *,
    alpha: float = 0.05,
    lower_is_better: bool = False,
    min_replicates: int = MIN_REPLICATES,
) -> Verdict:
    """The verdict about a method from its method-level interval and Holm-adjusted p."""
    if replicates < min_replicates:
        return Verdict.NOT_ASSESSABLE
    return _direction(interval, adjusted_p, alpha, lower_is_better)


def fixed_network_verdict(
    interval: Interval, adjusted_p: float, *, alpha: float = 0.05, lower_is_better: bool = False
) -> Verdict:
    """The same rule for two fixed trained networks (paired bootstrap CI, permutation p)."""
    return _direction(interval, adjusted_p, alpha, lower_is_better)


def not_assessable_reason(
    replicates: int, folds: int | None, preset: str = "<preset>", left_out: int = 0
) -> str:
    """Why a verdict is not assessable, and the command that would make it assessable;
    ``left_out``: seeds run but left out because the metric is undefined in either arm."""
    runs = f"{replicates} run{'s' if replicates != 1 else ''} per arm"
    if folds:
        runs = (
            f"{replicates} pretraining run{'s' if replicates != 1 else ''} per method "
            f"(the {folds} folds of a seed share one)"
        )
    if left_out:
        runs += f" ({left_out_words(replicates, left_out)})"
    cmd = f"medssl benchmark --preset {preset} --seeds 5"
    alt = f"--folds 5 --seeds {MIN_REPLICATES}"
    return f"not assessable with {runs}: rerun with `{cmd}` (or `{alt}`)"


def left_out_words(kept: int, left_out: int) -> str:
    """``1 of 3 seeds left out: the metric is undefined in either arm``."""
    return (
        f"{left_out} of {kept + left_out} seed{'s' if kept + left_out != 1 else ''} left out: "
        "the metric is undefined in either arm"
    )


def detectable_words(detectable: float, decimals: int = 3) -> str:
    """What a difference that is not supported says about its design."""
    if not math.isfinite(detectable):
        return "no difference detected"
    return (
        f"no difference detected; this design detects differences of ≥ {detectable:.{decimals}f} "
        "(80% power, two-sided α 0.05 before Holm)"
    )
