"""The smoke benchmark's report (3 seeds, the session's one smoke run): the detectable effect
beside every "within noise", drawn on the forest plot, and one of them computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps
from sklearn.metrics import matthews_corrcoef

from medssl.artifacts import read_csv
from medssl.reporting.forest import detectable_band


def test_every_within_noise_states_its_detectable_effect(smoke_benchmark):
    report = smoke_benchmark.out / "report"
    md = (report / "report.md").read_text(encoding="utf-8")
    head = md.split("## Tables")[0]
    noise = [line for line in head.splitlines() if "within noise" in line]
    assert noise, "the smoke benchmark has no difference within noise"
    for line in noise:
        assert line.count("within noise") == line.count(
            "within noise: no difference detected; this design detects differences of ≥ "
        ), line
    rows = read_csv(report / "table_comparisons.csv")
    for r in rows:
        if r["verdict"] == "within noise":
            assert float(r["detectable (80% power)"]) > 0
    # the forest plot draws a band at +-X for each of them (tests/reporting/
    # test_report_verdicts.py checks the drawing): every such row has its X
    stats = json.loads((report / "statistics.json").read_text())
    within = [c for c in stats["comparisons"] if c["verdict"] == "within noise"]
    assert len(within) == sum(r["verdict"] == "within noise" for r in rows)
    assert all(np.isfinite(c["method"]["detectable"]) for c in within)
    assert (report / "forest_plot.png").is_file()


def _ncp(df: float) -> float:
    c = sps.t.ppf(0.975, df)
    return optimize.brentq(lambda n: sps.nct.sf(c, df, n) - 0.8, 0.5, 60.0)


def test_a_detectable_effect_against_a_hand_computation(smoke_benchmark):
    """US1 classification, simclr vs random: each seed's test MCC from its saved predictions
    (scikit-learn), the variance of the paired differences over 3 seeds, plus the report's
    test-patient term (the one number of the patient bootstrap taken from statistics.json);
    Satterthwaite df with the seed term at its 80% upper bound; the noncentral t."""
    out = smoke_benchmark.out
    runs = {
        (r["init"], int(r["seed"])): r["run_id"]
        for r in read_csv(out / "results.csv")
        if (r["database"], r["task"]) == ("US1", "classification")
    }

    def mcc(init, seed):
        with np.load(out / "runs" / runs[(init, seed)] / "predictions_test.npz") as z:
            patients = np.where(z["patients"] == "", z["ids"], z["patients"])
            return matthews_corrcoef(z["y_true"], z["probs"].argmax(axis=1)), len(set(patients))

    d = np.array([mcc("simclr", s)[0] - mcc("random", s)[0] for s in range(3)])
    patients = mcc("random", 0)[1]
    stats = json.loads((out / "report" / "statistics.json").read_text())
    row = next(
        c for c in stats["comparisons"]
        if (c["database"], c["task"], c["init"]) == ("US1", "classification", "simclr")
    )  # fmt: skip
    tau2 = row["method"]["components"]["test_patients"]
    seeds = d.var(ddof=1) / 3
    m = 2 / sps.chi2.ppf(0.2, 2)
    df = (m * seeds + tau2) ** 2 / ((m * seeds) ** 2 / 2 + tau2**2 / (patients - 1))
    x = _ncp(df) * np.sqrt(seeds + tau2)
    table = next(
        r for r in read_csv(out / "report" / "table_comparisons.csv")
        if (r["database"], r["task"], r["comparison"]) == ("US1", "classification", "simclr vs random")
    )  # fmt: skip
    assert float(table["difference"]) == pytest.approx(d.mean(), abs=5e-4)
    assert float(table["detectable (80% power)"]) == pytest.approx(x, abs=5e-4)
    assert row["method"]["detectable"] == pytest.approx(x, rel=1e-6)
    if row["verdict"] == "within noise":
        md = (out / "report" / "report.md").read_text(encoding="utf-8")
        assert f"this design detects differences of ≥ {x:.3f}" in md


def test_the_band_is_drawn_only_for_a_difference_within_noise():
    from medssl.reporting.comparisons import ComparisonRow
    from medssl.stats.bootstrap import Interval
    from medssl.stats.method import MethodResult
    from medssl.stats.verdicts import Verdict

    m = MethodResult("mcc", "paired", 0.5, 0.4, Interval(0.1, 0.0, 0.2), 0.04, 2.0, 0.1, 3, 3,
                     detectable=0.2)  # fmt: skip
    rows = {
        v: ComparisonRow(
            "classification", "US1", "simclr", "random", "mcc", m, 0.1, None, float("nan"), v
        )  # fmt: skip
        for v in Verdict
    }
    assert detectable_band(rows[Verdict.NOISE]) == 0.2
    assert all(np.isnan(detectable_band(r)) for v, r in rows.items() if v != Verdict.NOISE)
