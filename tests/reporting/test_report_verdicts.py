"""The report's verdicts from fake benchmark folders: method level, phantoms, the source-only
shortcut, per-source metrics, cross-validation intervals."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from medssl.artifacts import read_csv, write_bytes, write_csv, write_json
from medssl.metrics.classification import classification_metrics
from medssl.reporting.report import ReportOptions, build_report

OPTIONS = ReportOptions(n_resamples=400, n_permutations=400)
CLASSES = ("normal", "benign", "malignant")


def _probs(pred: np.ndarray) -> np.ndarray:
    p = np.full((len(pred), 3), 0.1)
    p[np.arange(len(pred)), pred] = 0.8
    return p


def write_classification_run(root, run_id, db, init, seed, fold, splits) -> list[dict]:
    """splits: split -> (ids, y_true, y_pred, sources). Writes predictions; returns records."""
    records = []
    for split, (ids, y, pred, sources) in splits.items():
        buf = io.BytesIO()
        np.savez(buf, ids=ids, patients=ids, sources=sources, y_true=y, probs=_probs(pred))
        write_bytes(root / "runs" / run_id / f"predictions_{split}.npz", buf.getvalue())
        for m, v in classification_metrics(y, _probs(pred)).items():
            records.append(
                dict(run_id=run_id, task="classification", database=db, init=init, seed=seed,
                     fold="" if fold is None else fold, split=split, metric=m, value=v)
            )  # fmt: skip
    return records


def write_database(root, name, files, sources, labels, splits, *, phantoms=(), known=True):
    cols = ["role", "index", "split", "source", "file", "label", "modality", "patient",
            "patient_known"]  # fmt: skip
    rows = [
        dict(zip(cols, ["finetune", i, sp, src, f, CLASSES[y], "us", f, int(known)], strict=True))
        for i, (f, src, y, sp) in enumerate(zip(files, sources, labels, splits, strict=True))
    ]
    write_csv(root / "databases" / name / "manifest.csv", rows, cols)
    write_json(
        root / "databases" / name / "database.json",
        {"name": name, "checksum": f"sum-{name}", "phantoms": list(phantoms)},
    )


def noisy(y, accuracy, rng):
    wrong = rng.random(len(y)) > accuracy
    return np.where(wrong, (y + rng.integers(1, 3, len(y))) % 3, y)


@pytest.fixture(scope="module")
def seeds_dir(tmp_path_factory):
    """US1 (phantoms): 5 seeds, simclr clearly better. MG2: 1 seed, sources mix and the class
    follows the source exactly (A benign, B malignant). MIX: 1 seed, two sources with the same
    class mix."""
    root = tmp_path_factory.mktemp("verdicts")
    rng = np.random.default_rng(0)
    records = []
    n = 60
    ids = np.array([f"img{i}" for i in range(n)])
    y = np.arange(n) % 3
    tr_ids = np.array([f"tr{i}" for i in range(n)])
    src_us = np.full(n, "busi")
    for seed in range(5):
        for init, acc in (("random", 0.55), ("simclr", 0.95)):
            rid = f"cls-US1-{init}-s{seed}"
            records += write_classification_run(
                root, rid, "US1", init, seed, None,
                {"test": (ids, y, noisy(y, acc, rng), src_us),
                 "train": (tr_ids, y, y, src_us)},
            )  # fmt: skip
    write_database(root, "US1", ids, src_us, y, ["test"] * n, phantoms=["busi"], known=False)
    # MG2: source follows the class exactly (A: benign, B: malignant)
    y2 = np.where(np.arange(n) % 2 == 0, 1, 2)
    src2 = np.where(y2 == 1, "A", "B")
    for init in ("random", "simclr"):
        records += write_classification_run(
            root, f"cls-MG2-{init}-s0", "MG2", init, 0, None,
            {"test": (ids, y2, rng.integers(0, 3, n), src2),
             "train": (tr_ids, y2, y2, src2)},
        )  # fmt: skip
    write_database(root, "MG2", ids, src2, y2, ["test"] * n)
    # MIX: two sources, classes independent of the source
    src3 = np.where(np.arange(n) < n // 2, "A", "B")
    for init in ("random", "simclr"):
        records += write_classification_run(
            root, f"cls-MIX-{init}-s0", "MIX", init, 0, None,
            {"test": (ids, y, noisy(y, 0.9, rng), src3), "train": (tr_ids, y, y, src3)},
        )  # fmt: skip
    write_database(root, "MIX", ids, src3, y, ["test"] * n)
    write_csv(root / "results.csv", records, list(records[0]))
    # two pretraining runs: one learns, one never beats its random-init encoder's kNN reading
    # by more than 2 SE (a gain of 0.05 read with an SE of 0.03)
    plan = []
    for rid, gains in (("pt-good", [0.05, 0.15]), ("pt-flat", [0.0, 0.05])):
        plan.append({"run_id": rid, "kind": "pretrain", "database": "US1", "method": "simclr",
                     "seed": 0, "status": "done"})  # fmt: skip
        rows = [
            {"epoch": e, "step": 10 * (e + 1), "knn_bacc": 0.4 + g, "knn_bacc_se": 0.03,
             "knn_gain": g, "knn_gain_se": 0.03, "collapse_std": 0.8}
            for e, g in enumerate(gains)
        ]  # fmt: skip
        write_csv(root / "runs" / rid / "metrics.csv", rows, list(rows[0]))
        write_json(root / "runs" / rid / "random_init.json", {"knn_bacc": 0.4})
    write_json(root / "plan.json", plan)
    build_report(root, OPTIONS)
    return root


def test_pretraining_health_is_tabled_and_a_run_that_never_learned_is_warned(seeds_dir):
    rows = {r["kNN gain ± SE"]: r for r in _csv(seeds_dir, "table_pretraining_health")}
    good, flat = rows["+0.150 ± 0.030"], rows["+0.050 ± 0.030"]
    assert good["never beat random"] == "no" and good["useful at step"] == "20"
    assert flat["never beat random"] == "yes" and flat["useful at step"] == "never"
    assert flat["kNN last ± SE"] == "0.450 ± 0.030" and flat["kNN random init"] == "0.400"
    warnings = (seeds_dir / "report" / "report.md").read_text().split("## Warnings")[1]
    flat = [w for w in warnings.splitlines() if "pretraining seed 0" in w]
    assert len(flat) == 1 and "NEVER BEAT random init by more than 2 SE" in flat[0]


def _csv(root, name):
    return read_csv(root / "report" / f"{name}.csv")


def test_five_seeds_give_a_method_level_verdict_one_seed_does_not(seeds_dir):
    rows = {r["database"]: r for r in _csv(seeds_dir, "table_comparisons")}
    assert rows["US1"]["verdict"] == "supported: pretrained better"
    assert rows["US1"]["seeds"] == "5" and rows["US1"]["Holm p"] != "n/a"
    assert rows["MG2"]["verdict"] == "not assessable" and rows["MG2"]["Holm p"] == "n/a"
    md = (seeds_dir / "report" / "report.md").read_text()
    assert "MG2 classification, MCC: simclr - random" in md
    assert "not assessable with 1 run per arm: rerun with `medssl benchmark" in md


def test_phantom_reports_say_so_at_the_top_and_in_their_verdicts(seeds_dir):
    md = (seeds_dir / "report" / "report.md").read_text()
    head = md.split("## Verdicts")[0]
    assert "synthetic phantoms" in head and "US1: busi" in head
    verdicts = md.split("## Verdicts")[1].split("##")[0]
    us1 = [line for line in verdicts.splitlines() if "US1 classification" in line]
    mg2 = [line for line in verdicts.splitlines() if "MG2 classification" in line]
    assert us1[0].startswith("- On synthetic phantoms: US1")
    assert not mg2[0].startswith("- On synthetic phantoms")
    html = (seeds_dir / "report" / "report.html").read_text()
    assert "Table 5.2" in html and html.index("synthetic phantoms") < html.index("Table 5.2")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """The demo's situation: one phantom database, one seed per arm, benchmark preset demo."""
    root = tmp_path_factory.mktemp("demo")
    rng = np.random.default_rng(2)
    n = 60
    ids = np.array([f"img{i}" for i in range(n)])
    y = np.arange(n) % 3
    src = np.full(n, "busi")
    records = []
    for init, acc in (("random", 0.55), ("moco", 0.95)):
        records += write_classification_run(
            root, f"cls-US1-{init}-s0", "US1", init, 0, None,
            {"test": (ids, y, noisy(y, acc, rng), src)},
        )  # fmt: skip
    write_database(root, "US1", ids, src, y, ["test"] * n, phantoms=["busi"], known=False)
    write_csv(root / "results.csv", records, list(records[0]))
    write_json(root / "provenance.json", {"seeds": [0], "benchmark": {"preset": "demo"}})
    build_report(root, OPTIONS)
    return root


def test_the_demo_verdict_is_on_phantoms_not_assessable_and_names_its_rerun(demo_dir):
    md = (demo_dir / "report" / "report.md").read_text()
    verdicts = md.split("## Verdicts")[1].split("\n## ")[0]
    lines = [line for line in verdicts.splitlines() if "US1 classification" in line]
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith("- On synthetic phantoms: US1 classification, MCC: moco - random")
    assert "not assessable with 1 run per arm" in line and "supported" not in line
    assert "rerun with `medssl benchmark --preset demo --seeds 5`" in line
    row = _csv(demo_dir, "table_comparisons")[0]
    assert row["verdict"] == "not assessable" and row["seeds"] == "1"


def test_resampling_unit_is_named_images_without_patient_ids(seeds_dir):
    md = (seeds_dir / "report" / "report.md").read_text()
    assert "over test images (no patient ids published by busi" in md
    assert "over test patients" in md  # MG2 and MIX publish them


def test_shortcut_scores_one_where_classes_follow_the_source(seeds_dir):
    t61 = {(r["database"], r["init"]): r for r in _csv(seeds_dir, "table_6_1_classification")}
    assert t61[("MG2", "source shortcut")]["test MCC"] == "1.000"
    assert float(t61[("MIX", "source shortcut")]["test MCC"]) < 0.2
    assert ("US1", "source shortcut") not in t61  # one source: no shortcut
    md = (seeds_dir / "report" / "report.md").read_text()
    warnings = md.split("## Warnings")[1].split("##")[0]
    assert "- MG2 classification: random does not beat the source-only shortcut" in warnings
    assert "MIX classification" not in warnings  # 90% accurate models beat a chance shortcut
    short = {(r["database"], r["comparison"]) for r in _csv(seeds_dir, "table_shortcut")}
    assert ("MG2", "simclr vs source shortcut") in short


def test_per_source_table(seeds_dir):
    rows = _csv(seeds_dir, "table_per_source_classification")
    mg2 = [r for r in rows if r["database"] == "MG2" and r["init"] == "source shortcut"]
    assert {(r["source"], r["classes"], r["Acc"]) for r in mg2} == {
        ("A", "benign", "1.000"), ("B", "malignant", "1.000")
    }  # fmt: skip
    assert not [r for r in rows if r["database"] == "US1"]


@pytest.fixture(scope="module")
def cv_dir(tmp_path_factory):
    """One database, 3 seeds x 5 folds, 60 training and 20 test images per fold: per-fold test
    MCC of random 0.4 + e, of simclr 0.4 + e + d (fold- and seed-dependent)."""
    root = tmp_path_factory.mktemp("cv")
    records = []
    rng = np.random.default_rng(1)
    for seed in range(3):
        for fold in range(5):
            for init in ("random", "simclr"):
                value = (
                    0.4
                    + 0.01 * fold
                    + 0.02 * seed
                    + (0.1 + 0.01 * (fold - seed) if init == "simclr" else 0)
                )
                rid = f"cv-{init}-s{seed}-f{fold}"
                for split, nn in (("train", 60), ("val", 20), ("test", 20)):
                    for m, v in (("mcc", value), ("n", nn)):
                        records.append(dict(run_id=rid, task="classification", database="CV",
                                            init=init, seed=seed, fold=fold, split=split,
                                            metric=m, value=v))  # fmt: skip
                ids = np.array([f"s{seed}f{fold}i{i}" for i in range(20)])
                y = np.arange(20) % 3
                buf = io.BytesIO()
                np.savez(buf, ids=ids, patients=ids, y_true=y, probs=_probs(noisy(y, 0.7, rng)))
                write_bytes(root / "runs" / rid / "predictions_test.npz", buf.getvalue())
    write_csv(root / "results.csv", records, list(records[0]))
    build_report(root, OPTIONS)
    return root, records


def _two_stage(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, variance, df) of per-fold values (seeds, folds), 20 test / 60 train per fold: the
    seed means' variance / R plus 20/60 of the pooled within-seed variance; Satterthwaite df,
    the seed term at its 80% upper bound."""
    r, k = values.shape
    means = values.mean(axis=1)
    seeds = means.var(ddof=1) / r
    within = 20 / 60 * ((values - means[:, None]) ** 2).sum() / (r * (k - 1))
    m = (r - 1) / sps.chi2.ppf(0.2, r - 1)
    df = (m * seeds + within) ** 2 / ((m * seeds) ** 2 / (r - 1) + within**2 / (r * (k - 1)))
    return means.mean(), seeds + within, df


def test_cross_validation_uses_the_two_stage_interval_in_tables_and_verdicts(cv_dir):
    root, records = cv_dir

    def per_fold(init):
        v = {(r["seed"], r["fold"]): r["value"] for r in records
             if r["init"] == init and r["split"] == "test" and r["metric"] == "mcc"}  # fmt: skip
        return np.array([[v[(s, f)] for f in range(5)] for s in range(3)])

    rnd = per_fold("random")
    mean, var, df = _two_stage(rnd)
    half = sps.t.ppf(0.975, df) * np.sqrt(var)
    row = next(r for r in _csv(root, "table_6_1_classification") if r["init"] == "random")
    assert row["runs"] == "15"
    assert row["test MCC"] == f"{mean:.3f} ± {half:.3f}"
    mean, var, df = _two_stage(per_fold("simclr") - rnd)
    cmp = _csv(root, "table_comparisons")[0]
    assert cmp["difference"] == f"{mean:.3f}" and cmp["df"] == f"{df:.1f}"
    low, high = (
        mean - sps.t.ppf(0.975, df) * np.sqrt(var),
        mean + sps.t.ppf(0.975, df) * np.sqrt(var),
    )
    assert cmp["unadjusted 95% CI (method)"] == f"[{low:.3f}, {high:.3f}]"
    assert cmp["verdict"] == "supported: pretrained better" and cmp["seeds"] == "3"
    assert cmp["Holm family"] == "main comparisons, 1 test"
    md = (root / "report" / "report.md").read_text()
    assert "15 runs of 3 seeds x 5-fold CV, two-stage (seeds, then folds)" in md
    summary = {r["init"]: r for r in read_csv(root / "report" / "run_metrics_summary.csv")
               if (r["split"], r["metric"]) == ("test", "mcc")}  # fmt: skip
    assert summary["random"]["interval"] == "two-stage over seeds and folds (Nadeau-Bengio factor)"
    mean, var, df = _two_stage(rnd)
    assert float(summary["random"]["ci_high"]) == pytest.approx(
        mean + sps.t.ppf(0.975, df) * np.sqrt(var)
    )


ROOT = Path(__file__).resolve().parents[2]


def _github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation other than '-' dropped,
    spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_verdicts_section_states_the_labels_and_masks_policies():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## How to read the verdicts\n" in readme
    section = readme.split("\n## How to read the verdicts\n")[1].split("\n## ")[0]
    labels = section.split("- **Labels and masks**")[1].split("\n- **")[0]
    for policy in ("`BENIGN_WITHOUT_CALLBACK` never serves as a finetuning normal",
                   "`--balanced` included", "calcification-only", "left out of segmentation",
                   "not counted as normal", "area-aware", "`medssl data describe` counts"):  # fmt: skip
        assert policy in " ".join(labels.split()), policy
    # the link lands on docs/datasets.md's policy section, and the docs point back
    link = re.search(r"\(docs/datasets\.md#([\w-]+)\)", labels).group(1)
    datasets = (ROOT / "docs" / "datasets.md").read_text(encoding="utf-8")
    headings = {_github_anchor(h) for h in re.findall(r"^#+ (.+)$", datasets, re.M)}
    assert link in headings and link == "what-serves-which-task-medssls-policies"
    assert _github_anchor("How to read the verdicts") == "how-to-read-the-verdicts"
    assert "(../README.md#how-to-read-the-verdicts)" in datasets
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert '"How to read the verdicts"' in architecture


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory):
    """Segmentation on one split, 4 seeds per arm, simclr = random + image noise (no effect);
    simclr's seed 3 has no defined Dice (every value empty): left out of both arms."""
    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(4)
    n = 40
    ids = [f"img{i}" for i in range(n)]
    lesion = [0 if i < 3 else 1 for i in range(n)]
    base = 0.7 + 0.1 * rng.standard_normal(n)
    records = []
    for seed in range(4):
        offset = 0.03 * rng.standard_normal()
        for init in ("random", "simclr"):
            dice = base + offset + 0.05 * rng.standard_normal(n)
            rid = f"seg-{init}-s{seed}"
            rows = [
                {"id": i, "patient": i, "source": "busi", "lesion": les,
                 "dice": "" if (init, seed) == ("simclr", 3) or not les else f"{v:.6f}"}
                for i, les, v in zip(ids, lesion, dice, strict=True)
            ]  # fmt: skip
            write_csv(root / "runs" / rid / "per_image_test.csv", rows, list(rows[0]))
            records.append(dict(run_id=rid, task="segmentation", database="US1", init=init,
                                seed=seed, fold="", split="test", metric="dice",
                                value=float(np.mean(dice[3:]))))  # fmt: skip
    write_csv(root / "results.csv", records, list(records[0]))
    build_report(root, OPTIONS)
    return root


def test_a_difference_within_noise_states_what_its_design_detects(noise_dir):
    import json

    row = _csv(noise_dir, "table_comparisons")[0]
    assert row["verdict"] == "within noise"
    assert row["seeds"] == "3" and row["seeds left out"] == "1"
    assert row["Holm family"] == "main comparisons, 1 test"
    stats = json.loads((noise_dir / "report" / "statistics.json").read_text())
    method = stats["comparisons"][0]["method"]
    x = float(row["detectable (80% power)"])
    # the printed X has 80% power under the noncentral t at the comparison's SE and df
    c = sps.t.ppf(0.975, method["df"])
    for bound, side in ((x - 0.0005, -1), (x + 0.0005, 1)):
        power = sps.nct.sf(c, method["df"], bound / method["se"])
        assert (power - 0.8) * side > 0, (bound, power)
    md = (noise_dir / "report" / "report.md").read_text()
    verdict = next(line for line in md.split("## Verdicts")[1].splitlines() if "US1" in line)
    assert (
        f"within noise: no difference detected; this design detects differences of ≥ {x:.3f}"
        in verdict
    )
    assert "1 of 4 seeds left out: the metric is undefined in either arm" in verdict
    assert "unadjusted 95% CI" in verdict and "in main comparisons, 1 test" in verdict
    summary = md.split("## Summary")[1].split("## Verdicts")[0]
    assert f"no difference detected; this design detects differences of ≥ {x:.3f}" in summary
    assert "1 seed(s) left out" in summary


def test_the_forest_plot_draws_the_detectable_band(monkeypatch, tmp_path):
    from matplotlib.collections import PolyCollection

    from medssl.reporting import savefig
    from medssl.reporting.comparisons import ComparisonRow
    from medssl.reporting.forest import forest_plot
    from medssl.stats.bootstrap import Interval
    from medssl.stats.method import MethodResult
    from medssl.stats.verdicts import Verdict

    def row(init, verdict, detectable):
        m = MethodResult("dice", "paired", 0.7, 0.69, Interval(0.01, -0.02, 0.04), 0.015, 4.0,
                         0.5, 5, 5, detectable=detectable)  # fmt: skip
        return ComparisonRow("segmentation", "US1", init, "random", "dice", m, 0.5, None,
                             float("nan"), verdict)  # fmt: skip

    figures = []
    monkeypatch.setattr(savefig, "save_figure", lambda fig, path: figures.append(fig))
    rows = [row("simclr", Verdict.NOISE, 0.056), row("moco", Verdict.BETTER, 0.02)]
    assert forest_plot(rows, tmp_path / "forest.png")
    bands = [c for c in figures[0].axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1  # the supported difference has none
    xs = bands[0].get_paths()[0].vertices[:, 0]
    assert (xs.min(), xs.max()) == pytest.approx((-0.056, 0.056))
    assert "grey band" in " ".join(t.get_text() for t in figures[0].texts)


@pytest.fixture(scope="module")
def fractions_dir(tmp_path_factory):
    """Fine-tuning at 10% and all of the labels, 3 seeds per arm: simclr clearly better at
    10%, no better with all the labels."""
    root = tmp_path_factory.mktemp("fractions")
    rng = np.random.default_rng(6)
    n = 60
    ids = np.array([f"img{i}" for i in range(n)])
    y = np.arange(n) % 3
    src = np.full(n, "busi")
    records = []
    for fraction, gain in ((0.1, 0.4), (1.0, 0.0)):
        for seed in range(3):
            for init, acc in (("random", 0.5), ("simclr", 0.5 + gain)):
                rid = f"cls-{init}-f{fraction}-s{seed}"
                run = write_classification_run(
                    root, rid, "US1", init, seed, None, {"test": (ids, y, noisy(y, acc, rng), src)}
                )
                records += [
                    {**r, "evaluation": "finetune", "fraction": fraction, "pretrain_data": ""}
                    for r in run
                ]
    write_database(root, "US1", ids, src, y, ["test"] * n, known=False)
    write_csv(root / "results.csv", records, list(records[0]))
    build_report(root, OPTIONS)
    return root


def test_with_label_fractions_the_answer_leads_with_few_labels(fractions_dir):
    md = (fractions_dir / "report" / "report.md").read_text()
    summary = md.split("## Summary")[1].split("## Verdicts")[0]
    few, full = summary.split("### All the labels")
    assert "### Few labels (at most 25% of the training labels)" in few
    assert "- fine-tuning, 10% of the labels: US1 classification (MCC" in few
    assert "simclr +" in few and "supported: pretrained better" in few
    assert "- US1 classification (MCC, pretrained - random)" in full and "10%" not in full
    assert "this design detects differences of ≥" in full  # within noise with all the labels
    html = (fractions_dir / "report" / "report.html").read_text()
    answer = html.split('<section id="answer">')[1].split("</section>")[0]
    assert answer.index("Few labels") < answer.index("All the labels")
    # the section's verdicts do not repeat the fraction-1 fine-tuning sentences of the answer
    section = md.split("## Label efficiency: verdicts per fraction")[1]
    assert "fine-tuning, 100% of the labels: US1" not in section
    assert "fine-tuning, 100% of the labels: the verdicts of the answer above" in section
    assert "fine-tuning, 10% of the labels: US1 classification" in section
    table = {r["fraction"]: r for r in _csv(fractions_dir, "table_label_efficiency_verdicts")}
    assert (
        table["1"]["Holm family"]
        == table["0.1"]["Holm family"]
        == ("label-efficiency comparisons, 2 tests")
    )
