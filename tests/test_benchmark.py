"""The benchmark: plan, paired folds, and the smoke matrix through the CLI, killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medssl.artifacts import read_csv
from medssl.cli.main import main
from medssl.data.database import Database
from medssl.tasks.benchmark import fold_splits, plan_runs, resolve_benchmark


@pytest.fixture(scope="module")
def smoke_dbs(tmp_path_factory):
    from medssl.data.build import build_preset

    out = tmp_path_factory.mktemp("smoke_dbs")
    return {Database.load(p).name: Database.load(p) for p in build_preset("smoke", out)}


def test_plan_covers_the_matrix_with_stable_ids(smoke_dbs):
    cfg = resolve_benchmark("smoke", [], seeds=2, folds=None)
    runs = plan_runs(cfg, smoke_dbs)
    pre = [r for r in runs if r.kind == "pretrain"]
    fine = [r for r in runs if r.kind == "finetune"]
    assert len(pre) == 3 * 3 * 2  # databases x methods x seeds: 9 encoders per seed
    assert (
        len(fine) == 3 * 2 * 4 * 2
    )  # databases x tasks x (3 encoders + random) x seeds: 24 per seed
    assert len({r.run_id for r in runs}) == len(runs)
    again = plan_runs(resolve_benchmark("smoke", ["device=cpu"], seeds=2, folds=None), smoke_dbs)
    assert [r.run_id for r in again] == [r.run_id for r in runs], (
        "the device must not change run ids"
    )
    longer = plan_runs(
        resolve_benchmark("smoke", ["finetune.epochs=3"], seeds=2, folds=None), smoke_dbs
    )
    assert {r.run_id for r in longer if r.kind == "pretrain"} == {r.run_id for r in pre}
    assert not {r.run_id for r in longer if r.kind == "finetune"} & {r.run_id for r in fine}
    for r in fine:
        if r.init != "random":
            enc = next(p for p in pre if p.run_id == r.encoder_run)
            assert (enc.database, enc.method, enc.seed) == (r.database, r.init, r.seed)


def test_folds_are_shared_patient_grouped_and_cover_every_image(smoke_dbs):
    db = smoke_dbs["US1"]
    k = 3
    tested = []
    for fold in range(k):
        split = fold_splits(db, k, repeat_seed=0, fold=fold)
        assert split == fold_splits(
            db, k, repeat_seed=0, fold=fold
        )  # pretrained and baseline: same folds
        assert {"train", "val", "test"} <= set(split)
        tested += [i for i, s in enumerate(split) if s == "test"]
        patients: dict[str, set[str]] = {}
        for row, s in zip(db.rows("finetune"), split):
            patients.setdefault(row["patient"], set()).add(s)
        assert all(len(v) == 1 for v in patients.values())
    assert sorted(tested) == list(range(len(db.rows("finetune")))), (
        "each image is a test image once per repeat"
    )
    assert fold_splits(db, k, repeat_seed=1, fold=0) != fold_splits(db, k, repeat_seed=0, fold=0)
    cfg = resolve_benchmark("smoke", [], seeds=1, folds=3)
    runs = plan_runs(cfg, smoke_dbs)
    assert sum(r.kind == "finetune" for r in runs) == 3 * 2 * 4 * 3


def _done(out: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/done.json")}


def test_smoke_matrix_killed_then_resumed_reuses_finished_runs(tmp_path, capsys):
    out = tmp_path / "bench"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "medssl.cli.main",
        "benchmark",
        "--preset",
        "smoke",
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "runs").is_dir() and len(_done(out)) >= 4:
                break
            time.sleep(0.5)
        assert proc.poll() is None, f"benchmark ended early: {proc.stderr.read().decode()[-2000:]}"
        os.killpg(proc.pid, signal.SIGKILL)  # a crash, not a polite stop
    finally:
        proc.wait()
    finished = _done(out)
    assert len(finished) >= 4

    assert main(["benchmark", "--preset", "smoke", "--out", str(out), "--no-progress"]) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert len(plan) == 18 + 48
    assert all(p["status"] in ("done", "reused") for p in plan)
    for run_id, mtime in finished.items():  # finished work is neither lost nor repeated
        assert _done(out)[run_id] == mtime
        assert next(p for p in plan if p["run_id"] == run_id)["status"] == "reused"
    assert len(_done(out)) == 66
    assert not list((out / "runs").glob("*/checkpoint.pt")), "finished runs drop their resume state"
    assert len(list((out / "runs").glob("*/encoder.pt"))) == 18

    rows = read_csv(out / "results.csv")
    assert {r["run_id"] for r in rows} == {p["run_id"] for p in plan if p["kind"] == "finetune"}
    assert {r["init"] for r in rows} == {"random", "simclr", "moco", "byol"}
    assert {r["database"] for r in rows} == {"US1", "MG2", "USMG3"}
    assert {r["seed"] for r in rows} == {"0", "1"}

    html = (out / "report" / "report.html").read_text()
    for table in ("5.2", "5.3", "6.1", "6.2", "B.2"):
        assert f"Table {table}" in html, table
    assert "within noise" in html or "supported" in html
    pngs = list((out / "runs").glob("*/*.png"))
    assert html.count("<img") >= len(pngs) > 0
    assert "http://" not in html and "https://" not in html
    for name in ("loss_curve.png", "tsne.png", "roc_pr_test.png", "confusion_test.png"):
        assert any(p.name == name for p in pngs), name
    assert not any(p.name.endswith(("_train.png", "_val.png")) for p in pngs)  # figure_splits

    # the report is rebuilt from saved results alone, identically
    tables = {p.name: p.read_bytes() for p in (out / "report").glob("*.md")}
    assert main(["report", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in (out / "report").glob("*.md")} == tables
