"""The benchmark: plan, paired folds, and the smoke matrix through the CLI, killed and resumed."""

from __future__ import annotations

import json

import pytest

from conftest import SMOKE_SEEDS, done_runs
from medssl.artifacts import read_csv
from medssl.cli.main import main
from medssl.data.database import Database
from medssl.errors import ConfigError
from medssl.tasks.benchmark import fold_splits, plan_runs, resolve_benchmark


@pytest.fixture(scope="module")
def smoke_dbs(tmp_path_factory):
    from medssl.data.build_preset import build_preset

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
        resolve_benchmark("smoke", ["finetune.trainer.epochs=3"], seeds=2, folds=None), smoke_dbs
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
            patients.setdefault(row.patient, set()).add(s)
        assert all(len(v) == 1 for v in patients.values())
    assert sorted(tested) == list(range(len(db.rows("finetune")))), (
        "each image is a test image once per repeat"
    )
    assert fold_splits(db, k, repeat_seed=1, fold=0) != fold_splits(db, k, repeat_seed=0, fold=0)
    cfg = resolve_benchmark("smoke", [], seeds=1, folds=3)
    runs = plan_runs(cfg, smoke_dbs)
    assert sum(r.kind == "finetune" for r in runs) == 3 * 2 * 4 * 3


def test_smoke_matrix_killed_then_resumed_reuses_finished_runs(smoke_benchmark):
    """Killed with SIGKILL after four runs, the same command finishes the matrix (with progress
    bars on and estimates that overrun their total) and loses or repeats no finished run."""
    out, finished = smoke_benchmark.out, smoke_benchmark.done_before_kill
    assert smoke_benchmark.rc == 0
    assert len(finished) >= 4
    assert "est. s" in smoke_benchmark.stderr  # the progress bar was drawn
    plan = json.loads((out / "plan.json").read_text())
    n_pre, n_fine = 3 * 3 * SMOKE_SEEDS, 3 * 2 * 4 * SMOKE_SEEDS
    assert len(plan) == n_pre + n_fine
    assert all(p["status"] in ("done", "reused") for p in plan)
    for run_id, mtime in finished.items():  # finished work is neither lost nor repeated
        assert done_runs(out)[run_id] == mtime
        assert next(p for p in plan if p["run_id"] == run_id)["status"] == "reused"
    assert len(done_runs(out)) == n_pre + n_fine
    assert not list((out / "runs").glob("*/checkpoint.pt")), "finished runs drop their resume state"
    assert len(list((out / "runs").glob("*/encoder.pt"))) == n_pre

    rows = read_csv(out / "results.csv")
    assert {r["run_id"] for r in rows} == {p["run_id"] for p in plan if p["kind"] == "finetune"}
    assert {r["init"] for r in rows} == {"random", "simclr", "moco", "byol"}
    assert {r["database"] for r in rows} == {"US1", "MG2", "USMG3"}
    assert {r["seed"] for r in rows} == {str(s) for s in range(SMOKE_SEEDS)}
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seeds"] == list(range(SMOKE_SEEDS)) and prov["benchmark"]["preset"] == "smoke"
    assert set(prov["data_checksums"]) == {"US1", "MG2", "USMG3"}


def test_smoke_report_tables_figures_and_rebuild(smoke_benchmark):
    out = smoke_benchmark.out
    html = (out / "report" / "report.html").read_text()
    for table in ("5.2", "5.3", "6.1", "6.2", "B.2"):
        assert f"Table {table}" in html, table
    pngs = list((out / "runs").glob("*/*.png"))
    assert html.count("<img") >= len(pngs) > 0
    assert "http://" not in html and "https://" not in html
    for name in ("loss_curve.png", "tsne.png", "roc_pr_test.png", "confusion_test.png"):
        assert any(p.name == name for p in pngs), name
    assert not any(p.name.endswith(("_train.png", "_val.png")) for p in pngs)  # figure_splits
    assert (
        out / "report" / "table_thesis_departures.csv"
    ).is_file()  # smoke pretrains as the thesis
    assert "Departures of the thesis presets" in html

    # the report is rebuilt from saved results alone, identically
    tables = {p.name: p.read_bytes() for p in (out / "report").glob("*.md")}
    assert main(["report", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in (out / "report").glob("*.md")} == tables


def test_smoke_report_gives_method_level_verdicts_on_phantoms(smoke_benchmark):
    """Three seeds per arm: every comparison is assessed at the method level (supported or
    within noise, Holm-adjusted), and the report says the data are phantoms."""
    report = smoke_benchmark.out / "report"
    rows = read_csv(report / "table_comparisons.csv")
    assert len(rows) == 3 * 3 * 2  # databases x methods x tasks
    assert {r["seeds"] for r in rows} == {str(SMOKE_SEEDS)}
    assert all(r["Holm p"] != "n/a" for r in rows)
    assert {r["verdict"] for r in rows} <= {
        "supported: pretrained better", "supported: pretrained worse", "within noise"
    }  # fmt: skip
    md = (report / "report.md").read_text()
    assert "synthetic phantoms" in md.split("## Verdicts")[0]
    verdicts = md.split("## Verdicts")[1].split("\n## ")[0]
    lines = [line for line in verdicts.splitlines() if line.startswith("- ")]
    assert len(lines) == len(rows)
    assert all(line.startswith("- On synthetic phantoms: ") for line in lines)
    assert all(
        "method-level unadjusted 95% CI" in line and "For these trained networks" in line
        for line in lines
    )
    assert len(read_csv(report / "table_comparisons_fixed.csv")) == len(rows)


def test_smoke_report_shows_the_source_shortcut_and_per_source_metrics(smoke_benchmark):
    """MG2 and USMG3 finetune on images of several sources (MG2's CBIS-DDSM images are all
    malignant, as in the thesis): the shortcut is scored and compared, per-source tables follow."""
    report = smoke_benchmark.out / "report"
    t61 = {(r["database"], r["init"]) for r in read_csv(report / "table_6_1_classification.csv")}
    assert {("MG2", "source shortcut"), ("USMG3", "source shortcut")} <= t61
    assert ("US1", "source shortcut") not in t61
    short = read_csv(report / "table_shortcut.csv")
    assert {r["database"] for r in short} == {"MG2", "USMG3"}
    assert len(short) == 2 * 4  # every init, random included, against the shortcut
    cls = read_csv(report / "table_per_source_classification.csv")
    mg2 = {r["source"]: r for r in cls if r["database"] == "MG2" and r["init"] == "random"}
    assert set(mg2) == {"cbis_ddsm", "inbreast"} and mg2["cbis_ddsm"]["classes"] == "malignant"
    seg = read_csv(report / "table_per_source_segmentation.csv")
    assert {r["database"] for r in seg} == {"MG2", "USMG3"}


def test_smoke_distances_in_mm_where_the_dicom_spacing_is_known(smoke_benchmark):
    """MG2's INbreast finetuning images carry a pixel spacing, its CBIS-DDSM ones do not: HD in
    mm is defined for the former and counted as undefined for the latter, never dropped."""
    rows = read_csv(smoke_benchmark.out / "results.csv")
    test = {}
    for r in rows:
        if (r["database"], r["task"], r["split"]) == ("MG2", "segmentation", "test"):
            test.setdefault(r["run_id"], {})[r["metric"]] = float(r["value"])
    assert test
    for metrics in test.values():
        assert metrics["hd_orig_px"] > 0 and metrics["hd_orig_px_undefined"] == 0
        assert metrics["hd_mm"] > 0 and metrics["n_lesion"] > metrics["hd_mm_undefined"] >= 0


def test_pretraining_variants_are_extra_encoders(smoke_dbs):
    """variants add encoders (an SSL method with other pretraining settings, e.g. the
    edge-keeping augmentation) fine-tuned under their own name beside the methods."""
    cfg = resolve_benchmark(
        "smoke",
        ["methods=[simclr]", "tasks=[segmentation]",
         "variants={simclr-edges: {method: simclr, augmentation: edges}}"],
        seeds=1, folds=None,
    )  # fmt: skip
    runs = plan_runs(cfg, smoke_dbs)
    pre = [r for r in runs if r.kind == "pretrain"]
    assert {r.method for r in pre} == {"simclr", "simclr-edges"}
    edges = next(r for r in pre if r.method == "simclr-edges")
    assert edges.config["method"] == "simclr" and edges.config["augmentation"] == "edges"
    fine = [r for r in runs if r.kind == "finetune"]
    assert {r.init for r in fine} == {"random", "simclr", "simclr-edges"}
    assert len({r.run_id for r in runs}) == len(runs)
    with pytest.raises(ConfigError, match="variants.simclr"):
        plan_runs(
            resolve_benchmark("smoke", ["variants={simclr: {method: moco}}"], 1, None), smoke_dbs
        )
    with pytest.raises(ConfigError, match="expected a mapping with its method"):
        plan_runs(
            resolve_benchmark("smoke", ["variants={x: {augmentation: edges}}"], 1, None), smoke_dbs
        )


def test_segmentation_preset_pits_densecl_and_edges_against_random_init(tiny_db):
    """presets/benchmark_segmentation.yaml: segmentation fine-tuning from random init, SimCLR,
    DenseCL and both with the edge-keeping augmentation, every seed; no classification."""
    import dataclasses

    cfg = resolve_benchmark("segmentation", [], None, None)
    runs = plan_runs(dataclasses.replace(cfg, data=["tiny"]), {"tiny": tiny_db})
    pre = {(r.method, r.seed): r for r in runs if r.kind == "pretrain"}
    pretrained = {
        "simclr": ("simclr", "thesis"), "densecl": ("densecl", "thesis"),
        "simclr-edges": ("simclr", "edges"), "densecl-edges": ("densecl", "edges"),
    }  # fmt: skip
    assert set(pre) == {(m, s) for m in pretrained for s in range(3)}
    for (name, _), r in pre.items():
        assert (r.config["method"], r.config["augmentation"]) == pretrained[name]
    fine = [r for r in runs if r.kind != "pretrain"]
    assert {(r.kind, r.task, r.evaluation, r.fraction) for r in fine} == {
        ("finetune", "segmentation", "finetune", 1.0)
    }  # fmt: skip
    assert sorted((r.init, r.seed) for r in fine) == sorted(
        (i, s) for i in ["random", *pretrained] for s in range(3)
    )
    for r in fine:
        if r.init != "random":
            assert r.encoder_run == pre[(r.init, r.seed)].run_id
    assert len({r.run_id for r in runs}) == len(runs)


def test_smoke_report_opens_with_the_answer_and_stays_small(smoke_benchmark):
    """The page a reviewer reads first: the question, what was compared (the training budget
    in one line), the verdicts and the forest plot, before any table; distances carry their
    unit; every figure is embedded shrunk (thumbnail and enlarged view, no full-size image)."""
    import base64
    import io
    import re

    from PIL import Image

    from medssl.reporting.html import FULL_WIDTH, THUMB_WIDTH

    html = (smoke_benchmark.out / "report" / "report.html").read_text(encoding="utf-8")
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "IMG", html)
    order = [
        text.index('<section id="answer">'),
        text.index('class="question"'),
        text.index("Compared: random, simclr, moco, byol on US1, MG2, USMG3"),
        text.index('class="verdicts"'),
        text.index('alt="Every pretrained - random difference with its 95% CI"'),
        text.index('<section id="statistics">'),
        text.index('<section id="data">'),
        text.index('<section id="results">'),
    ]
    assert order == sorted(order), order
    budget = text[order[2] : text.index("</p>", order[2])]
    assert f"{SMOKE_SEEDS} seeds" in budget and "pretraining 1 epoch;" in budget, budget
    assert "fine-tuning 1 epoch." in budget, budget
    for unit in ("HD [px@64]", "HD95 [px@64]", "HD [orig px]", "HD [mm]"):
        assert unit in text, unit
    widths = [
        Image.open(io.BytesIO(base64.b64decode(b))).width
        for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    ]
    assert widths and max(widths) <= FULL_WIDTH
    thumbs = [w for w in widths if w <= THUMB_WIDTH]
    # every figure is a thumbnail and its enlarged view, but the few shown at the page's
    # width (the forest plot, one overview per database and stage)
    wide = len(widths) - 2 * len(thumbs)
    assert 0 < wide <= 1 + 3 * 3, (len(widths), len(thumbs))
    # figures dominate the file: on average at most ~20 KB per embedded image (base64)
    assert len(html) < 20_000 * len(widths) + 2_000_000, (len(html), len(widths))


def test_a_one_seed_report_of_the_three_databases_is_under_5_mb(smoke_benchmark, tmp_path):
    """The demo's target (issue #16: its report under ~5 MB) in absolute terms. The demo is one
    seed of every method on US1, MG2 and USMG3 with figures of the test split; the smoke
    benchmark is that matrix at SMOKE_SEEDS seeds (its report grows with them), so the report
    is rebuilt from its seed-0 runs alone: what a one-seed benchmark of the same shape holds."""
    import os

    from medssl.artifacts import read_json, write_csv, write_json
    from medssl.reporting.report import build_report

    src, out = smoke_benchmark.out, tmp_path / "seed0"
    (out / "runs").mkdir(parents=True)
    rows = read_csv(src / "results.csv")
    write_csv(out / "results.csv", [r for r in rows if r["seed"] == "0"], list(rows[0]))
    plan = [r for r in read_json(src / "plan.json") if r["seed"] == 0]
    write_json(out / "plan.json", plan)
    for name in ("provenance.json", "benchmark.json"):
        (out / name).write_bytes((src / name).read_bytes())
    os.symlink(src / "databases", out / "databases")
    for r in plan:  # the runs as they are, without copying their checkpoints
        os.symlink(src / "runs" / r["run_id"], out / "runs" / r["run_id"])
    assert {r["kind"] for r in plan} == {"pretrain", "finetune"} and len(plan) == 3 * (3 + 8)
    size = build_report(out).stat().st_size
    assert size < 5_000_000, f"a one-seed report.html is {size / 1e6:.1f} MB"
