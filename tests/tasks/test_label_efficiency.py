"""Label fractions (nested, stratified, patient-grouped, paired), frozen-encoder probes, and a
label-efficiency benchmark through the CLI."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medssl.data.database import Database
from medssl.data.fractions import fraction_split, fraction_subsets
from medssl.errors import ConfigError

FRACTIONS = [0.1, 0.25, 0.5, 1.0]


def _pool(n_patients: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and patients of a split: 1-3 images per patient, imbalanced classes, a few
    patients with images of two classes."""
    rng = np.random.default_rng(seed)
    labels, patients = [], []
    for p in range(n_patients):
        c = int(rng.choice(3, p=[0.6, 0.3, 0.1]))
        for i in range(int(rng.integers(1, 4))):
            labels.append(c if i == 0 or p % 7 else (c + 1) % 3)
            patients.append(f"P{p}")
    return np.array(labels), np.array(patients)


def test_subsets_are_nested_stratified_and_patient_grouped():
    labels, patients = _pool()
    subsets = fraction_subsets(labels, patients, FRACTIONS, seed=(3, 0))
    assert np.array_equal(subsets[1.0], np.arange(len(labels)))
    for small, large in zip(FRACTIONS, FRACTIONS[1:], strict=False):
        assert set(subsets[small]) <= set(subsets[large])  # nested
        assert len(subsets[small]) < len(subsets[large])
    for f, idx in subsets.items():
        assert set(labels[idx]) == {0, 1, 2}  # every class, even at 10%
        inside = set(patients[idx])
        outside = set(patients[np.setdiff1d(np.arange(len(labels)), idx)])
        assert not inside & outside  # a patient is all in or all out
        for c in (0, 1, 2):  # stratified: each class near its share (patients of <= 3 images)
            share = (labels[idx] == c).sum() / (labels == c).sum()
            assert share == pytest.approx(f, abs=3.5 / (labels == c).sum() + 0.05)


def test_subsets_follow_the_seed_only():
    labels, patients = _pool()
    a = fraction_subsets(labels, patients, FRACTIONS, seed=(1, 0))
    b = fraction_subsets(labels, patients, [0.25], seed=(1, 0))  # one fraction asked alone
    c = fraction_subsets(labels, patients, FRACTIONS, seed=(2, 0))
    assert np.array_equal(a[0.25], b[0.25])
    assert not np.array_equal(a[0.25], c[0.25])  # another replicate, another subset


def test_a_class_that_is_no_patients_majority_is_kept():
    labels = np.array([0, 0, 1, 0, 0, 2, 1, 1])  # class 2 only beside two 0s of patient A
    patients = np.array(["A", "A", "B", "C", "C", "A", "D", "E"])
    for seed in range(5):
        for idx in fraction_subsets(labels, patients, [0.1, 0.5], seed=seed).values():
            assert set(labels[idx]) == {0, 1, 2}


@pytest.mark.parametrize("bad", [[], [0.0], [1.5], [-0.1, 0.5]])
def test_fractions_outside_zero_one_are_an_error(bad):
    labels, patients = _pool(10)
    with pytest.raises(ConfigError, match="label_fractions"):
        fraction_subsets(labels, patients, bad, seed=0)


def _memory_db() -> Database:
    rng = np.random.default_rng(0)
    n = 90
    split = ["train"] * 60 + ["val"] * 15 + ["test"] * 15
    labels = [i % 3 for i in range(n)]
    db = Database.from_arrays(
        pretrain=np.zeros((2, 8, 8)), pretrain_split=["train", "val"],
        finetune=rng.integers(0, 255, (n, 8, 8)), finetune_masks=np.zeros((n, 8, 8)),
        finetune_labels=labels, finetune_split=split,
    )  # fmt: skip
    rows = [  # two images per patient (the checksum stays from_arrays's)
        dataclasses.replace(r, patient=f"P{r.index // 2}") if r.role == "finetune" else r
        for r in db.manifest
    ]
    return dataclasses.replace(db, manifest=rows)


def test_fraction_split_cuts_train_only_and_is_paired_across_inits():
    db = _memory_db()
    assert fraction_split(db, 1.0, seed=0) is None  # today's run: no override
    folds = ["train", "val", "test"] * 30
    assert fraction_split(db, 1.0, seed=0, base=folds) is folds
    full = {s: db.indices("finetune", s).tolist() for s in ("train", "val", "test")}
    quarter = fraction_split(db, 0.25, seed=0)
    half = fraction_split(db, 0.5, seed=0)
    assert quarter["val"] == full["val"] and quarter["test"] == full["test"]  # untouched
    assert set(quarter["train"]) < set(half["train"]) < set(full["train"])
    # the draw takes the replicate (seed, fold), never the init: asking again is the same
    assert fraction_split(db, 0.25, seed=0) == quarter
    assert fraction_split(db, 0.25, seed=1)["train"] != quarter["train"]
    fold0 = fraction_split(db, 0.5, seed=0, fold=0, base=folds)
    fold1 = fraction_split(db, 0.5, seed=0, fold=1, base=folds)
    assert fold0["val"] == [i for i, n in enumerate(folds) if n == "val"]
    assert set(fold0["train"]) < {i for i, n in enumerate(folds) if n == "train"}
    assert fold0["train"] != fold1["train"]


def _separable(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (3n, 16): class c is a tight cluster around 5 * e_c (perfectly separable)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    x = rng.normal(0, 0.1, (len(y), 16))
    x[np.arange(len(y)), y] += 5.0
    return x.astype(np.float32), y


@pytest.mark.parametrize("probe", ["linear", "knn"])
def test_probes_score_one_on_separable_features(probe):
    from medssl.metrics.classification import classification_metrics
    from medssl.tasks.probe import ProbeConfig, probe_predictions

    feats, labels = {}, {}
    for i, s in enumerate(("train", "val", "test")):
        feats[s], labels[s] = _separable(8, i)
    fitted, probs = probe_predictions(ProbeConfig(probe=probe), feats, labels)
    for s in ("train", "val", "test"):
        m = classification_metrics(labels[s], probs[s])
        assert m["mcc"] == pytest.approx(1.0) and m["balanced_accuracy"] == pytest.approx(1.0)
    assert probs["test"].shape == (24, 3) and np.allclose(probs["test"].sum(1), 1.0)
    best = max(fitted.val_scores.values())
    first_best = next(k for k, v in fitted.val_scores.items() if v == best)
    assert best == pytest.approx(1.0) and fitted.value == float(first_best)  # ties: the first


class _Watched(dict):
    """A split -> array mapping that logs which split is read, in order."""

    def __init__(self, *args, log: list[str]):
        super().__init__(*args)
        self.log = log

    def __getitem__(self, key):
        self.log.append(key)
        return super().__getitem__(key)


@pytest.mark.parametrize("probe", ["linear", "knn"])
def test_the_probe_is_chosen_before_the_test_split_is_read(probe, monkeypatch):
    from medssl.tasks import probe as probe_mod

    log: list[str] = []
    real = dict(probe_mod.FIT)

    def logged(name):
        def fit(*args):
            fitted = real[name](*args)
            log.append("chosen")
            return fitted

        return fit

    monkeypatch.setitem(probe_mod.FIT, probe, logged(probe))
    x, y = _separable(6, 0)
    poison = np.full((18, 16), np.nan, dtype=np.float32)  # breaks any fit that touches it
    feats = _Watched({"train": x, "val": _separable(6, 1)[0], "test": poison}, log=log)
    labels = {"train": y, "val": y, "test": y}
    cfg = probe_mod.ProbeConfig(probe=probe)
    if probe == "linear":  # sklearn refuses NaN input: only the final prediction may fail
        with pytest.raises(ValueError, match="NaN"):
            probe_mod.probe_predictions(cfg, feats, labels)
    else:
        probe_mod.probe_predictions(cfg, feats, labels)
    assert log.index("chosen") < log.index("test")
    assert set(log[: log.index("chosen")]) == {"train", "val"}


def test_knn_takes_the_k_that_validation_prefers():
    from medssl.tasks.probe import ProbeConfig, fit_knn

    # train: class 0 at angle 0, class 1 at 90 degrees, plus one class-1 point near class 0.
    # A val point of class 1 next to that stray point is right with k=1, wrong with k=3.
    angle = np.array([0.0, 0.05, -0.05, 0.3, np.pi / 2, np.pi / 2 + 0.05, np.pi / 2 - 0.05])
    train_x = np.stack([np.cos(angle), np.sin(angle)], 1).astype(np.float32)
    train_y = np.array([0, 0, 0, 1, 1, 1, 1])
    val_x = np.array([[np.cos(0.29), np.sin(0.29)], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    val_y = np.array([1, 0, 1])
    fitted = fit_knn(train_x, train_y, val_x, val_y, ProbeConfig(probe="knn", k_grid=[1, 3]))
    assert fitted.value == 1 and fitted.val_scores["1"] > fitted.val_scores["3"]


def test_plan_holds_fractions_and_probes_with_their_own_ids():
    from medssl.tasks.benchmark import _plan_text, plan_runs, resolve_benchmark

    db = _memory_db()
    base = ["methods=[simclr]", "tasks=[classification]"]
    today = plan_runs(resolve_benchmark("smoke", base, seeds=2, folds=None), {"memory": db})
    cfg = resolve_benchmark(
        "smoke",
        [*base, "label_fractions=[0.25, 1.0]", "evaluations=[finetune, linear, knn]"],
        seeds=2,
        folds=None,
    )
    runs = plan_runs(cfg, {"memory": db})
    ids = [r.run_id for r in runs]
    assert len(set(ids)) == len(ids)
    # fraction 1.0 fine-tunes are today's runs, ids included
    assert {r.run_id for r in today} <= set(ids)
    evals = [r for r in runs if r.kind != "pretrain"]
    assert {(r.kind, r.evaluation) for r in evals} == {
        ("finetune", "finetune"), ("probe", "linear"), ("probe", "knn")
    }  # fmt: skip
    # per seed: 2 fractions x 3 evaluations x 2 inits
    assert len(evals) == 2 * 2 * 3 * 2 and {r.fraction for r in evals} == {0.25, 1.0}
    probe = next(r for r in evals if r.kind == "probe" and r.init == "simclr")
    assert probe.encoder_run in {r.run_id for r in runs if r.kind == "pretrain"}
    assert "frozen-encoder probes" in _plan_text(runs, {"memory": db}, 60.0, 1)
    # fraction_evaluations: only the probes at the smaller fraction, the same run ids
    probes_only = resolve_benchmark(
        "smoke",
        [*base, "label_fractions=[0.25, 1.0]", "evaluations=[finetune, linear, knn]",
         "fraction_evaluations=[linear]"],
        seeds=2, folds=None,
    )  # fmt: skip
    fewer = plan_runs(probes_only, {"memory": db})
    assert {(r.evaluation, r.fraction) for r in fewer if r.kind != "pretrain"} == {
        ("finetune", 1.0), ("linear", 1.0), ("knn", 1.0), ("linear", 0.25)
    }  # fmt: skip
    assert {r.run_id for r in fewer} <= set(ids)
    with pytest.raises(ConfigError, match="fraction_evaluations"):
        bad = [*base, "evaluations=[finetune]", "fraction_evaluations=[knn]"]
        plan_runs(resolve_benchmark("smoke", bad, 1, None), {"m": db})
    with pytest.raises(ConfigError, match="frozen serves segmentation"):
        plan_runs(resolve_benchmark("smoke", [*base, "evaluations=[frozen]"], 1, None), {"m": db})
    with pytest.raises(ConfigError, match="unknown evaluation"):
        plan_runs(resolve_benchmark("smoke", [*base, "evaluations=[lin]"], 1, None), {"m": db})


def test_curve_area_is_the_mean_height_over_log_fraction():
    from medssl.reporting.label_efficiency import curve_area

    assert curve_area([0.1, 1.0], [0.2, 0.6]) == pytest.approx(0.4)
    # 0.1 -> 0.01 -> 1.0 in log10 steps of 1: trapezoids 0.5 * (0 + 1) and 0.5 * (1 + 1)
    assert curve_area([1.0, 0.01, 0.1], [1.0, 0.0, 1.0]) == pytest.approx(0.75)
    assert curve_area([0.5], [0.3]) == 0.3
    assert np.isnan(curve_area([0.5, 1.0], [0.3, np.nan]))


RECIPE = """\
phantom_scale: 0.25
databases:
  - name: US1
    sizes: {pretrain: 48, finetune: 32}
    quotas:
      pretrain:
        qamebi: {benign: 8, malignant: 8}
        busi: {normal: 8}
      finetune:
        busi: {benign: 10, malignant: 10, normal: 10}
"""

BENCHMARK = """\
data: [{recipe}]
methods: [simclr]
inits: [random, "mine={weights}"]
tasks: [classification]
seeds: 3
workers: 2
label_fractions: [0.5, 1.0]
evaluations: [finetune, linear, knn]
probe: {{c_grid: [0.01, 1.0], k_grid: [1, 5]}}
pretrain_preset: thesis
pretrain:
  trainer: {{epochs: 1, precision: 32-true}}
  batch_size: 8
  augmentation_options: {{size: 32}}
finetune_preset: demo
finetune:
  trainer: {{epochs: 1, precision: 32-true}}
  batch_size: 8
  figure_splits: []
"""


@pytest.fixture(scope="module")
def label_benchmark(tmp_path_factory):
    """One database (the smoke US1), SimCLR and a third arm of weights the fixture brings (a
    torchvision-layout ResNet-18 state dict), classification, 3 seeds (the fewest that give
    verdicts), fractions 0.5 and 1, fine-tuning and both probes, through the CLI."""
    import torch
    import torchvision

    from medssl.cli.main import main
    from medssl.data.build_preset import build_preset

    root = tmp_path_factory.mktemp("label")
    torch.manual_seed(3)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), root / "mine.pth")
    (root / "recipe.yaml").write_text(RECIPE)
    (root / "bench.yaml").write_text(
        BENCHMARK.format(recipe=root / "recipe.yaml", weights=root / "mine.pth")
    )
    out = root / "bench"
    build_preset(root / "recipe.yaml", out / "databases", phantoms=True, warn=lambda _: None)
    args = ["benchmark", "--preset", str(root / "bench.yaml"), "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_label_efficiency_benchmark_reports_curves_table_and_verdicts(label_benchmark):
    import hashlib

    from medssl.artifacts import read_csv, read_json

    out = label_benchmark
    plan = read_json(out / "plan.json")
    assert {(r["kind"], r["evaluation"]) for r in plan} == {
        ("pretrain", "finetune"), ("finetune", "finetune"), ("probe", "linear"),
        ("probe", "knn"),
    }  # fmt: skip
    assert all(r["status"] == "done" for r in plan)
    # once per encoder: 3 seeds x (simclr, random), and the brought file once for every seed
    assert len(list((out / "features").glob("*.npy"))) == 7
    rows = read_csv(out / "results.csv")
    assert {(r["evaluation"], r["fraction"]) for r in rows} == {
        (e, f) for e in ("finetune", "linear", "knn") for f in ("0.5", "1.0")
    }

    def ids(evaluation, fraction, init, split, seed=0):
        run = next(
            r for r in plan if (r["evaluation"], r["fraction"], r["init"], r["seed"])
            == (evaluation, fraction, init, seed) and r["kind"] != "pretrain"
        )  # fmt: skip
        with np.load(out / "runs" / run["run_id"] / f"predictions_{split}.npz") as z:
            return set(z["ids"].tolist())

    half = ids("finetune", 0.5, "random", "train")
    assert half == ids("finetune", 0.5, "simclr", "train") == ids("knn", 0.5, "simclr", "train")
    assert half < ids("finetune", 1.0, "random", "train")  # nested in the whole split
    assert half != ids("finetune", 0.5, "random", "train", seed=1)  # drawn per replicate
    for split in ("val", "test"):
        assert ids("linear", 0.5, "simclr", split) == ids("finetune", 1.0, "random", split)

    report = out / "report"
    for ev in ("finetune", "linear", "knn"):
        assert (report / f"label_efficiency_US1_classification_{ev}.png").is_file()
    curve = read_csv(report / "table_label_efficiency.csv")
    assert len(curve) == 3 * 3 * 2  # evaluations x inits (random, simclr, mine) x fractions
    assert {r["init"] for r in curve} == {"random", "simclr", "mine"}
    verdicts = read_csv(report / "table_label_efficiency_verdicts.csv")
    assert {(v["evaluation"], v["fraction"], v["comparison"]) for v in verdicts} == {
        (e, f, c)
        for e in ("fine-tuning", "linear probe", "kNN probe")
        for f in ("0.5", "1")
        for c in ("simclr vs random", "mine vs random", "simclr vs mine")
    }
    assert all(v["verdict"] != "not assessable" and v["seeds"] == "3" for v in verdicts)
    # the comparisons with the brought arm are a Holm family of their own
    assert {v["Holm family"] for v in verdicts if v["comparison"] == "simclr vs mine"} == {
        "label-efficiency comparisons with mine, 6 tests"
    }
    assert len(read_csv(report / "table_label_efficiency_area.csv")) == 9
    page = (report / "report.html").read_text()
    assert "Label efficiency and frozen-encoder probes" in page
    assert "linear probe, 50% of the labels" in (report / "report.md").read_text()
    # the thesis tables hold fine-tuning on the whole train split only
    table61 = read_csv(report / "table_6_1_classification.csv")
    assert [r["runs"] for r in table61] == ["3", "3", "3"]
    # the third arm: in the main verdicts against random init, and every SSL encoder against it
    main_rows = read_csv(report / "table_comparisons.csv")
    assert {r["comparison"] for r in main_rows} == {"simclr vs random", "mine vs random"}
    against = read_csv(report / "table_comparisons_brought.csv")
    assert {r["comparison"] for r in against} == {"simclr vs mine"}
    assert {r["Holm family"].split(",")[0] for r in against} == {"comparisons with mine"}
    assert all(r["verdict"] != "not assessable" for r in against)
    md = (report / "report.md").read_text()
    assert "SSL encoders against the weights you brought (inits)" in md
    assert "(MCC, SSL - mine)" in md and "US1 classification, MCC: simclr - mine = " in md
    prov = read_json(out / "provenance.json")
    weights = out.parent / "mine.pth"
    assert prov["inits"] == {
        "mine": {"file": str(weights), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    }


def test_label_efficiency_preset_declares_the_curve():
    import dataclasses

    from medssl.tasks.benchmark import plan_runs, resolve_benchmark

    cfg = resolve_benchmark("label_efficiency", [], None, None)
    assert cfg.label_fractions == [0.1, 0.25, 0.5, 1.0] and cfg.seeds == 3
    assert cfg.evaluations == ["finetune", "linear", "knn"]
    assert cfg.data == ["us1", "mg2", "usmg3"] and cfg.methods == ["simclr", "moco", "byol"]
    # pretraining and fine-tuning at this scale: medssl's presets, not the thesis's
    assert (cfg.pretrain_preset, cfg.finetune_preset) == ("medssl", "medssl")
    runs = plan_runs(dataclasses.replace(cfg, data=["memory"]), {"memory": _memory_db()})
    tuned = [r for r in runs if r.kind == "finetune"]
    assert tuned and {(r.config["batch_size"], r.config["optimizer"]["schedule"]) for r in tuned} == {
        (16, "cosine")
    }  # fmt: skip
    pretrain = [r for r in runs if r.kind == "pretrain"]
    # pretrain_medssl.yaml's SGD (the thesis preset's is Adam)
    assert pretrain and {r.config["optimizer"]["name"] for r in pretrain} == {"sgd"}


def test_demo_preset_plans_a_linear_curve_for_every_initialisation():
    """The README's main job (presets/benchmark_demo.yaml): linear probes at a quarter and at
    all of the labels for random init and every method, so its report draws a curve; fine-tuning
    stays on the whole train split."""
    import dataclasses

    from medssl.tasks.benchmark import plan_runs, resolve_benchmark

    cfg = resolve_benchmark("demo", [], None, None)
    runs = plan_runs(dataclasses.replace(cfg, data=["memory"]), {"memory": _memory_db()})
    probes = [r for r in runs if r.kind == "probe"]
    assert sorted((r.evaluation, r.task, r.init, r.fraction) for r in probes) == sorted(
        ("linear", "classification", init, f)
        for init in ("random", "simclr", "moco", "byol")
        for f in (0.25, 1.0)
    )
    tuned = [r for r in runs if r.kind == "finetune"]
    assert tuned and {r.fraction for r in tuned} == {1.0}
    for r in probes:
        if r.init != "random":
            assert r.encoder_run in {p.run_id for p in runs if p.kind == "pretrain"}


def _curve_point(evaluation: str, fraction: float, init: str, value: float):
    from medssl.reporting.comparisons import ModelCI
    from medssl.reporting.label_efficiency import CurvePoint
    from medssl.stats.bootstrap import Interval
    from medssl.stats.method import MethodResult

    iv = Interval(value, value - 0.1, value + 0.1)
    method = MethodResult(
        metric="mcc", method="two-level", a=value, b=float("nan"), interval=iv, se=0.05, df=4.0,
        p_value=0.01, replicates=3, runs=3,
    )  # fmt: skip
    ci = ModelCI("classification", "US1", init, "mcc", iv, n_seeds=3, n_patients=20, method=method)
    return CurvePoint(evaluation, fraction, 60 * fraction, ci)


def test_a_curve_figure_needs_two_fractions(tmp_path):
    """Linear probes at 0.25 and 1 make a figure; fine-tuning at 1 alone makes none, and keeps
    its rows in the curve table."""
    from medssl.reporting.label_efficiency import curve_figures, curve_table

    points = [
        _curve_point("linear", f, init, v)
        for init, base in (("random", 0.2), ("simclr", 0.4))
        for f, v in ((0.25, base), (1.0, base + 0.2))
    ] + [_curve_point("finetune", 1.0, init, 0.5) for init in ("random", "simclr")]
    figures = curve_figures(points, tmp_path)
    assert [path.name for _, path in figures] == ["label_efficiency_US1_classification_linear.png"]
    assert figures[0][1].is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [figures[0][1].name]
    table = curve_table(points)
    assert {(r[2], r[3], r[5]) for r in table.rows if r[2] == "fine-tuning"} == {
        ("fine-tuning", "random", "1"), ("fine-tuning", "simclr", "1")
    }  # fmt: skip


def test_transfer_plans_every_encoder_on_the_other_databases():
    import dataclasses

    from medssl.tasks.benchmark import plan_runs, resolve_benchmark

    a = _memory_db()
    b = dataclasses.replace(
        _memory_db(), meta=dataclasses.replace(a.meta, name="other", checksum="b")
    )
    dbs = {"memory": a, "other": b}
    base = ["methods=[simclr]", "tasks=[classification]", "label_fractions=[0.5, 1.0]"]
    today = plan_runs(resolve_benchmark("smoke", base, seeds=1, folds=None), dbs)
    runs = plan_runs(resolve_benchmark("smoke", [*base, "transfer=true"], 1, None), dbs)
    extra = [r for r in runs if r.run_id not in {t.run_id for t in today}]
    assert len(runs) == len({r.run_id for r in runs})
    # one per target: the other database's simclr encoder, whole train split only
    assert sorted((r.database, r.pretrain_data, r.fraction) for r in extra) == [
        ("memory", "other", 1.0), ("other", "memory", 1.0)
    ]  # fmt: skip
    pretrained = {r.run_id: r.database for r in runs if r.kind == "pretrain"}
    assert all(pretrained[r.encoder_run] == r.pretrain_data for r in extra)


MG2_RECIPE = """\
phantom_scale: 0.25
databases:
  - name: MG2
    sizes: {pretrain: 48, finetune: 32}
    quotas:
      pretrain:
        cbis_ddsm: {benign: 8, malignant: 8}
        mini_mias: {normal: 8}
      finetune:
        inbreast: {benign: 10, malignant: 10, normal: 10}
"""


@pytest.fixture(scope="module")
def transfer_benchmark(label_benchmark, tmp_path_factory):
    """The label benchmark's US1 plus MG2, fine-tuning on the whole train split, transfer:
    started from a hard-linked copy of the label benchmark, whose US1 pretraining and
    fraction-1 fine-tuning runs it reuses (the same run ids)."""
    import os
    import shutil

    from medssl.cli.main import main
    from medssl.data.build_preset import build_preset

    root = tmp_path_factory.mktemp("transfer")
    out = root / "bench"
    shutil.copytree(label_benchmark, out, copy_function=os.link)
    (root / "mg2.yaml").write_text(MG2_RECIPE)
    text = BENCHMARK.format(
        recipe=label_benchmark.parent / "recipe.yaml", weights=label_benchmark.parent / "mine.pth"
    )
    text = text.replace("data: [", f"data: [{root / 'mg2.yaml'}, ")
    text = text.replace("label_fractions: [0.5, 1.0]", "transfer: true")
    text = text.replace("evaluations: [finetune, linear, knn]", "evaluations: [finetune]")
    (root / "bench.yaml").write_text(text)
    build_preset(root / "mg2.yaml", out / "databases", phantoms=True, warn=lambda _: None)
    args = ["benchmark", "--preset", str(root / "bench.yaml"), "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_transfer_benchmark_reports_the_matrix_and_its_verdicts(transfer_benchmark):
    from medssl.artifacts import read_csv, read_json

    plan = read_json(transfer_benchmark / "plan.json")
    # US1's, from the label benchmark: 3 pretraining, 3 x 3 fine-tunes (random, simclr, mine)
    assert sum(r["status"] == "reused" for r in plan) == 3 + 9
    report = transfer_benchmark / "report"
    matrix = read_csv(report / "table_transfer_matrix.csv")
    # the brought arm has no pretraining database: a row of its own, like random init
    assert [(r["init"], r["pretrained on"]) for r in matrix] == [
        ("mine", "(none)"), ("random", "(none)"), ("simclr", "MG2"), ("simclr", "US1")
    ]  # fmt: skip
    assert all(r["US1"] and r["MG2"] for r in matrix)  # every row on both targets' test images
    verdicts = read_csv(report / "table_transfer_verdicts.csv")
    assert sorted((v["target"], v["pretraining data"]) for v in verdicts) == [
        ("MG2", "US1 vs MG2"), ("US1", "MG2 vs US1")
    ]  # fmt: skip
    assert all(v["verdict"] != "not assessable" for v in verdicts)
    assert "Pretraining data x target database" in (report / "report.html").read_text()
    # the thesis tables: in-domain encoders only (3 runs per init and database)
    assert {r["runs"] for r in read_csv(report / "table_6_1_classification.csv")} == {"3"}


def test_frozen_evaluation_fine_tunes_segmentation_with_the_encoder_frozen():
    from medssl.tasks.benchmark import plan_runs, resolve_benchmark

    db = _memory_db()
    cfg = resolve_benchmark(
        "smoke", ["methods=[simclr]", "evaluations=[finetune, frozen]"], seeds=1, folds=None
    )
    runs = [r for r in plan_runs(cfg, {"memory": db}) if r.kind != "pretrain"]
    frozen = [r for r in runs if r.evaluation == "frozen"]
    assert {r.task for r in frozen} == {"segmentation"} and len(frozen) == 2
    assert all(r.kind == "finetune" and r.config["freeze_encoder"] for r in frozen)
    assert not any(r.config["freeze_encoder"] for r in runs if r.evaluation == "finetune")
