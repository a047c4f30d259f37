"""The design planner through `medssl benchmark --dry-run`, on a fake pilot whose variance
components are known: Dice of simclr = random's + a shift per seed, so the paired per-seed
differences are the shifts (SD 0.05) and the test-patient term is exactly 0."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps

from medssl.artifacts import read_json, write_csv
from medssl.cli.main import main
from medssl.reporting.report import ReportOptions, build_report

ONE_DATABASE = """\
phantom_scale: 0.25
databases:
  - name: US1
    sizes: {pretrain: 48, finetune: 32}
    quotas:
      pretrain:
        busi: {normal: 8, benign: 8}
      finetune:
        busi: {benign: 10, malignant: 10, normal: 10}
"""
SHIFTS = (0.0, 0.05, 0.10)  # simclr - random per seed: SD 0.05


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    root = tmp_path_factory.mktemp("pilot")
    rng = np.random.default_rng(0)
    n = 30
    base = 0.6 + 0.1 * rng.standard_normal(n)
    records = []
    for seed, shift in enumerate(SHIFTS):
        for init, dice in (("random", base), ("simclr", base + shift)):
            rid = f"seg-{init}-s{seed}"
            rows = [{"id": f"i{i}", "patient": f"i{i}", "lesion": 1, "dice": f"{v:.6f}"}
                    for i, v in enumerate(dice)]  # fmt: skip
            write_csv(root / "runs" / rid / "per_image_test.csv", rows, list(rows[0]))
            records.append(dict(run_id=rid, task="segmentation", database="US1", init=init,
                                seed=seed, fold="", split="test", metric="dice",
                                value=float(dice.mean())))  # fmt: skip
    write_csv(root / "results.csv", records, list(records[0]))
    build_report(root, ReportOptions(n_resamples=200, n_permutations=200))
    return root


def _ncp(df: float) -> float:
    """The noncentrality at which the two-sided 5% t test on df has 80% power, by hand."""
    c = sps.t.ppf(0.975, df)
    return optimize.brentq(lambda n: sps.nct.sf(c, df, n) - 0.8, 0.5, 30.0)


@pytest.fixture(scope="module")
def tiny_database(tmp_path_factory):
    """(recipe file, built databases folder) of one tiny phantom database."""
    from medssl.data.build_preset import build_preset

    root = tmp_path_factory.mktemp("tiny")
    recipe = root / "one.yaml"
    recipe.write_text(ONE_DATABASE, encoding="utf-8")
    build_preset(recipe, root / "databases", phantoms=True, warn=lambda _: None)
    return recipe, root / "databases"


def _bench(out, recipe, *extra):
    return [
        "benchmark", "--preset", "smoke", "--seeds", "3", "--out", str(out), "--no-progress",
        "--dry-run", "--set", f"data=[{recipe}]", "--set", "methods=[simclr]",
        "--set", "tasks=[segmentation]", *extra,
    ]  # fmt: skip


def test_dry_run_prints_the_seeds_a_target_needs_and_their_time(
    pilot, tiny_database, tmp_path, capsys
):
    recipe, dbs = tiny_database
    out = tmp_path / "bench"
    shutil.copytree(dbs, out / "databases")
    assert main(_bench(out, recipe, "--set", f"pilot={pilot}", "--set", "target_effect=0.05")) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if "US1 segmentation dice: simclr vs random" in x)
    sd = np.std(SHIFTS, ddof=1)  # tau^2 = 0: the variance is sd^2 / R on R - 1 df
    now = _ncp(2) * sd / np.sqrt(3)
    assert f"the pilot's 3 seeds detect ≥ {now:.3f}" in line
    need = next(r for r in range(3, 200) if _ncp(r - 1) * sd / np.sqrt(r) <= 0.05)
    got = re.search(r"0\.05 needs (\d+) seeds \(~([\d.]+) (s|min|h) for its runs here\)", line)
    assert got and int(got[1]) == need, line
    # the time: one seed's runs of the comparison (both fine-tunes and simclr's pretraining)
    # from the plan's estimates, times the seeds
    plan = read_json(out / "plan.json")
    seed0 = sum(p["estimate_s"] for p in plan if p["seed"] == 0)  # the whole matrix is it
    workers = int(re.search(r"(\d+) run\(s\) at a time\)", printed)[1])
    seconds = float(got[2]) * {"s": 1, "min": 60, "h": 3600}[got[3]]
    assert seconds == pytest.approx(seed0 * need / workers, rel=0.06, abs=1)
    assert f"--seeds {need}, about" in printed


def test_dry_run_without_a_pilot_offers_one(tiny_database, tmp_path, capsys):
    recipe, dbs = tiny_database
    shutil.copytree(dbs, tmp_path / "bench" / "databases")
    assert main(_bench(tmp_path / "bench", recipe, "--set", "target_effect=0.05")) == 0
    printed = capsys.readouterr().out
    assert "design planner: no pilot" in printed
    assert "`medssl benchmark --preset smoke --seeds 3 --out PILOT`" in printed
