"""The report rebuilt from a fixed, fake benchmark folder: exact tables, verdicts, offline HTML."""

from __future__ import annotations

import base64
import io
import re
import struct
import zlib
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pytest

from medssl.artifacts import read_csv, write_bytes, write_csv, write_json, write_text
from medssl.errors import DataError
from medssl.metrics import classification as cls_metrics
from medssl.reporting.html import THUMB_COLOURS, THUMB_WIDTH, shrink_png
from medssl.reporting.provenance import collect_provenance, device_name, write_provenance
from medssl.reporting.report import ReportOptions, build_report
from medssl.reporting.tables import Table, to_latex, to_markdown

DBS = {"US1": 0.5, "MG2": 0.3}  # base value of every record
INITS = {"random": 0.0, "simclr": 0.1}  # gain
SEEDS = (0, 1)
SPLIT_OFFSET = {"train": 0.2, "val": 0.1, "test": 0.0}
CLS_METRICS = ["mcc", "balanced_accuracy", "f1_weighted", "loss"] + [
    f"{k}_{c}" for c in ("normal", "benign", "malignant") for k in ("sensitivity", "specificity")
]
SEG_METRICS = ["dice", "iou", "pixel_accuracy", "loss", "hd"]
N_IMAGES = 60  # 20 patients x 3 images
OPTIONS = ReportOptions(n_resamples=300, n_permutations=300)


def tiny_png(shade: int) -> bytes:
    """A valid 2x2 grey PNG (no image library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + bytes([shade, shade]) for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def run_id(task: str, db: str, init: str, seed: int) -> str:
    return f"{task[:3]}-{db}-{init}-s{seed}"


def class_predictions(db: str, init: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(N_IMAGES) % 3
    baseline = np.where(np.arange(N_IMAGES) % 5 < 2, (y + 1) % 3, y)  # 60% correct
    better = init != "random" and db == "US1"
    return y, (y if better else baseline)


def seg_counts(db: str, init: str, seed: int) -> dict[str, int]:
    """Test-split counts per segmentation run: missed lesions, normal images with FP pixels."""
    missed = (3 + 2 * seed if init == "random" else 1) + (db == "MG2")
    return {"missed_lesions": missed, "normal_fp_images": 2 if init == "random" else seed}


def seg_dice(db: str, init: str) -> np.ndarray:
    dice = 0.4 + 0.3 * ((np.arange(N_IMAGES) * 7) % 10) / 10
    return dice + 0.25 if (init != "random" and db == "US1") else dice


def make_run_dir(root: Path) -> Path:
    records = []
    plan = []
    for db, base in DBS.items():
        for init, gain in INITS.items():
            for seed in SEEDS:
                for task, metrics in (
                    ("classification", CLS_METRICS),
                    ("segmentation", SEG_METRICS),
                ):
                    rid = run_id(task, db, init, seed)
                    for split, off in SPLIT_OFFSET.items():
                        for k, m in enumerate(metrics):
                            value = round(base + gain + 0.02 * seed + off + 0.001 * k, 6)
                            if (db, init, split, m) == ("MG2", "simclr", "test", "loss"):
                                value = float("nan")
                            records.append(
                                {
                                    "run_id": rid,
                                    "task": task,
                                    "database": db,
                                    "init": init,
                                    "seed": seed,
                                    "fold": "",
                                    "split": split,
                                    "metric": m,
                                    "value": value,
                                }
                            )
                    if task == "segmentation":
                        records += [
                            {"run_id": rid, "task": task, "database": db, "init": init,
                             "seed": seed, "fold": "", "split": "test", "metric": m, "value": v}
                            for m, v in seg_counts(db, init, seed).items()
                        ]  # fmt: skip
                    folder = root / "runs" / rid
                    ids = np.array([f"{db}-img{i}" for i in range(N_IMAGES)])
                    patients = np.array([f"{db}-p{i // 3}" for i in range(N_IMAGES)])
                    if task == "classification":
                        y, pred = class_predictions(db, init)
                        probs = np.full((N_IMAGES, 3), 0.1)
                        probs[np.arange(N_IMAGES), pred] = 0.8
                        buf = io.BytesIO()
                        np.savez(buf, ids=ids, patients=patients, y_true=y, probs=probs)
                        write_bytes(folder / "predictions_test.npz", buf.getvalue())
                    else:
                        dice = seg_dice(db, init)
                        empty = np.arange(N_IMAGES) % 10 == 0  # normals: excluded from Dice
                        rows = [
                            {
                                "id": ids[i],
                                "patient": patients[i],
                                "lesion": int(not empty[i]),
                                "dice": 0.0 if empty[i] else dice[i],
                                "iou": dice[i] / 2,
                                "pixel_accuracy": 0.9,
                                "precision": "",
                                "recall": "nan",
                                "hd": 3.0,
                                "hd95": 2.0,
                            }
                            for i in range(N_IMAGES)
                        ]
                        write_csv(folder / "per_image_test.csv", rows, list(rows[0]))
                    plan.append(
                        {"run_id": rid, "kind": "finetune", "task": task, "database": db, "init": init,
                         "seed": seed, "fold": None, "status": "done", "seconds": 12.5}
                    )  # fmt: skip
        pre = f"pre-{db}-simclr-s0"
        plan.insert(0, {"run_id": pre, "kind": "pretrain", "database": db, "method": "simclr", "seed": 0,
                        "status": "done", "seconds": 100.0})  # fmt: skip
        write_bytes(root / "runs" / pre / "loss_curve.png", tiny_png(10))
        write_bytes(root / "runs" / pre / "tsne.png", tiny_png(20))
        write_text(root / "runs" / pre / "config.yaml", "method: simclr\nepochs: 2\n")
    write_bytes(
        root / "runs" / run_id("classification", "US1", "simclr", 0) / "roc.png", tiny_png(30)
    )
    write_bytes(
        root / "runs" / run_id("segmentation", "US1", "simclr", 0) / "figures" / "examples.png",
        tiny_png(40),
    )
    write_csv(root / "results.csv", records, list(records[0]))
    write_json(root / "plan.json", {"runs": plan})

    manifest_cols = ["role", "index", "split", "source", "file", "label", "modality", "patient"]
    for db, source in (("US1", "busi"), ("MG2", "inbreast")):
        rows = []
        labels = [("train", "normal"), ("test", "normal"), ("train", "benign"), ("train", "benign"),
                  ("val", "benign"), ("test", "malignant")]  # fmt: skip
        for i, (split, label) in enumerate(labels):
            rows.append(
                dict(
                    zip(
                        manifest_cols,
                        ["finetune", i, split, source, f"f{i}.png", label, "us", f"p{i}"],
                    )
                )
            )
        for i in range(2):
            rows.append(
                dict(
                    zip(
                        manifest_cols,
                        ["pretrain", i, "train", "extra", f"x{i}.png", "benign", "us", f"q{i}"],
                    )
                )
            )
        write_csv(root / "databases" / db / "manifest.csv", rows, manifest_cols)
        write_json(root / "databases" / db / "database.json", {"name": db, "checksum": f"sum-{db}"})
    dbs = {db: root / "databases" / db for db in DBS}
    prov = collect_provenance(seeds=SEEDS, databases=dbs)
    prov["runs"] = {"pre-US1-simclr-s0": {"seconds": 100.0, "config": {"lr": 0.25}}}  # nested
    write_provenance(root / "provenance.json", prov)
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = make_run_dir(tmp_path_factory.mktemp("bench"))
    html = build_report(root, OPTIONS)
    assert html == root / "report" / "report.html"
    return root


def _md(root: Path, name: str) -> str:
    return (root / "report" / f"{name}.md").read_text(encoding="utf-8")


def test_table_6_1_rows_exact(built):
    text = _md(built, "table_6_1_classification")
    assert (
        "| database | init | runs | train MCC | train BA | train F1w | train Loss | val MCC | val BA | "
        "val F1w | val Loss | test MCC | test BA | test F1w | test Loss |"
    ) in text
    # two seeds (a, a + 0.02): mean a + 0.01, half-width t(0.975, 1) * 0.01 = 0.127
    assert (
        "| US1 | random | 2 | 0.710 ± 0.127 | 0.711 ± 0.127 | 0.712 ± 0.127 | 0.713 ± 0.127 | "
        "0.610 ± 0.127 | 0.611 ± 0.127 | 0.612 ± 0.127 | 0.613 ± 0.127 | "
        "0.510 ± 0.127 | 0.511 ± 0.127 | 0.512 ± 0.127 | 0.513 ± 0.127 |"
    ) in text
    assert (
        text.rstrip()
        .splitlines()[-3]
        .endswith("| 0.410 ± 0.127 | 0.411 ± 0.127 | 0.412 ± 0.127 | n/a (2 undef.) |")
    )


def test_table_6_2_and_b_2_rows_exact(built):
    seg = _md(built, "table_6_2_segmentation")
    assert (
        "| MG2 | random | 2 | 0.510 ± 0.127 | 0.511 ± 0.127 | 0.512 ± 0.127 | 0.513 ± 0.127 | 0.51 ± 0.13 |"
        in seg
    )
    # beside the means: test missed lesions and normal images with false-positive pixels
    # (US1 random: 3 and 5 missed, t(1) half-width 12.706 x 1; simclr: 0 and 1 normals with FP)
    header = seg.splitlines()[2]
    assert header.endswith("| test missed lesions | test normals with FP |")
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in seg.splitlines()}
    assert rows[("US1", "random")].endswith("| 4.0 ± 12.7 | 2.0 ± 0.0 |")
    assert rows[("US1", "simclr")].endswith("| 1.0 ± 0.0 | 0.5 ± 6.4 |")
    assert rows[("MG2", "random")].endswith("| 5.0 ± 12.7 | 2.0 ± 0.0 |")
    report = (built / "report" / "report.md").read_text(encoding="utf-8")
    assert rows[("US1", "random")] in report.split("## Tables")[1]  # the report holds the table
    b2 = _md(built, "table_b_2_sensitivity_specificity")
    assert (
        "| database | init | runs | test Sens normal | test Spec normal | test Sens benign |" in b2
    )
    assert "| US1 | simclr | 2 | 0.614 ± 0.127 | 0.615 ± 0.127 | 0.616 ± 0.127 |" in b2


def test_numeric_summary(built):
    rows = read_csv(built / "report" / "run_metrics_summary.csv")
    row = next(
        r
        for r in rows
        if (r["task"], r["database"], r["init"], r["split"], r["metric"])
        == ("classification", "US1", "random", "test", "mcc")
    )
    assert row["runs"] == "2" and row["undefined"] == "0"
    assert float(row["mean"]) == pytest.approx(0.51)
    assert row["interval"] == "t over seeds (run-to-run spread on this test set)"
    assert float(row["ci_high"]) - float(row["mean"]) == pytest.approx(12.7062047 * 0.01)
    nan_row = next(
        r
        for r in rows
        if (r["database"], r["init"], r["split"], r["metric"]) == ("MG2", "simclr", "test", "loss")
    )
    assert nan_row["mean"] == "" and nan_row["runs"] == "2" and nan_row["undefined"] == "2"


def test_data_tables_exact(built):
    """Tables 5.2 and 5.3 in the thesis's column order (benign, malignant, normal, total), a
    total row per role, the same rows `medssl data describe` prints."""
    sources = _md(built, "table_5_2_sources")
    assert "| database | role | source | benign | malignant | normal | total |" in sources
    assert "| US1 | finetune | busi | 3 | 1 | 2 | 6 |" in sources
    assert "| MG2 | pretrain | extra | 2 | 0 | 0 | 2 |" in sources
    assert "| US1 | finetune | total | 3 | 1 | 2 | 6 |" in sources
    splits = _md(built, "table_5_3_splits")
    for row in (
        "| US1 | finetune | train | 2 | 0 | 1 | 3 |",
        "| US1 | finetune | val | 1 | 0 | 0 | 1 |",
        "| US1 | finetune | test | 0 | 1 | 1 | 2 |",
    ):
        assert row in splits


def test_comparisons_and_verdicts(built):
    """Two seeds per arm: the fixed-network comparison can call a difference, the method-level
    verdict cannot (not assessable, with the command that would make it so)."""
    rows = read_csv(built / "report" / "table_comparisons_fixed.csv")
    assert len(rows) == 4  # 2 databases x 1 pretraining x 2 tasks, one Holm family
    by = {(r["task"], r["database"]): r for r in rows}
    us1 = by[("classification", "US1")]
    assert us1["for these networks"] == "supported: pretrained better"
    assert us1["model"] == "1.000"
    assert us1["Holm p"] == f"{4 / 301:.3f}"  # 1/301 for each of 4 tests, times 4
    assert us1["Holm family"] == "main comparisons, these networks, 4 tests"
    y, pred = class_predictions("MG2", "random")
    mcc = f"{cls_metrics.mcc(cls_metrics.confusion_matrix(y, pred)):.3f}"
    assert (
        f"| classification | MG2 | simclr vs random | MCC | {mcc} | {mcc} | 0.000 | [0.000, 0.000] | 1.000 | "
        "1.000 | main comparisons, these networks, 4 tests | within noise | 60 | 20 | 2 |"
    ) in _md(built, "table_comparisons_fixed")
    seg = by[("segmentation", "US1")]
    assert seg["for these networks"] == "supported: pretrained better"
    assert seg["difference"] == "0.250"  # normals (lesion 0) are excluded from the Dice mean
    assert by[("segmentation", "MG2")]["for these networks"] == "within noise"
    method = read_csv(built / "report" / "table_comparisons.csv")
    assert len(method) == 4
    assert {r["verdict"] for r in method} == {"not assessable"}
    assert {r["seeds"] for r in method} == {"2"}
    report_md = (built / "report" / "report.md").read_text(encoding="utf-8")
    assert "US1 classification, MCC: simclr - random = +0.600" in report_md
    assert "not assessable with 2 runs per arm" in report_md
    assert "--seeds 5" in report_md and "--folds 5 --seeds 3" in report_md
    assert "For these trained networks: +0.600" in report_md
    assert "supported" not in report_md.split("## Tables")[0]


def test_bootstrap_table_lists_every_model(built):
    rows = read_csv(built / "report" / "table_test_bootstrap.csv")
    cls = [r for r in rows if r["task"] == "classification" and r["metric"] == "MCC"]
    assert [(r["database"], r["init"]) for r in cls] == [
        ("US1", "random"), ("US1", "simclr"), ("MG2", "random"), ("MG2", "simclr")
    ]  # fmt: skip
    assert all(
        r["seeds"] == "2" and r["images"] == "60" and r["resampling units"] == "20" for r in rows
    )
    dice = {(r["database"], r["init"]): r["pooled estimate"] for r in rows if r["metric"] == "Dice"}
    # digits 1..9 of 0.4 + 0.3 * d / 10 average 0.55; the normals (Dice written 0.0) are excluded
    assert dice[("US1", "random")] == dice[("MG2", "random")] == dice[("MG2", "simclr")] == "0.550"


def test_html_is_self_contained_with_every_table_and_figure(built):
    html = (built / "report" / "report.html").read_text(encoding="utf-8")
    for md in sorted((built / "report").glob("table_*.md")):
        assert f'id="{md.stem}"' in html
    pngs = sorted((built / "runs").rglob("*.png"))
    assert len(pngs) == 6
    for png in pngs:  # a thumbnail that enlarges on click, both embedded
        thumb = shrink_png(png.read_bytes(), THUMB_WIDTH, THUMB_COLOURS)
        assert "data:image/png;base64," + base64.b64encode(thumb).decode() in html
    assert html.count('class="lightbox"') >= len(pngs)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    for text in (
        html_escape(device_name()),  # this machine's, recorded by collect_provenance
        "sum-US1",
        "&quot;lr&quot;: 0.25",
        "Appendix A",
        "Appendix C",
        "No figures were saved",
        "epochs: 2",
    ):
        assert text in html
    assert "supported" in html and "within noise" in html


def test_latex_escapes_and_pm():
    t = Table(name="t", title="a_b & c", columns=("x_1", "y"), rows=(("0.5 ± 0.1", "<0.001"),))
    tex = to_latex(t)
    assert r"\caption{a\_b \& c}" in tex
    assert r"x\_1 & y \\" in tex
    assert r"0.5 $\pm$ 0.1 & $<$0.001 \\" in tex
    assert to_markdown(t).splitlines()[2:] == [
        "| x_1 | y |",
        "| --- | --- |",
        "| 0.5 ± 0.1 | <0.001 |",
    ]


def test_rebuild_gives_identical_files(built):
    before = {p.name: p.read_bytes() for p in (built / "report").iterdir()}
    build_report(built, OPTIONS)
    after = {p.name: p.read_bytes() for p in (built / "report").iterdir()}
    assert before == after


def test_missing_pieces_become_notes(built, tmp_path):
    write_bytes(tmp_path / "results.csv", (built / "results.csv").read_bytes())
    html = build_report(tmp_path, OPTIONS).read_text(encoding="utf-8")
    assert "predictions_test.npz not found" in html
    assert "provenance.json not found" in html
    assert "No database manifests found" in html
    assert (tmp_path / "report" / "table_6_1_classification.csv").is_file()


def test_missing_results_names_the_file(tmp_path):
    with pytest.raises(DataError, match="results.csv"):
        build_report(tmp_path, OPTIONS)


def test_collect_provenance_has_versions_and_checksums(tmp_path):
    write_json(tmp_path / "db" / "database.json", {"checksum": "abc"})
    prov = collect_provenance(seeds=[3], databases={"X": tmp_path / "db"})
    assert {"torch", "torchvision", "lightly", "smp", "lightning_fabric", "numpy", "scipy",
            "sklearn"} <= set(prov["packages"])  # fmt: skip
    assert prov["data_checksums"] == {"X": "abc"}
    assert prov["seeds"] == [3] and prov["device"] == device_name() and prov["python"]


def test_coarse_masks_are_named_in_the_report(built, tmp_path):
    """A database whose lesion masks include coarse ones (mini-MIAS circles asked for with
    circles_as_masks, recorded in database.json "coarse_masks") is named under the data and
    the results tables, with its source; a database without them is not."""
    root = make_run_dir(tmp_path)
    write_json(
        root / "databases" / "MG2" / "database.json",
        {"name": "MG2", "checksum": "sum-MG2", "coarse_masks": {"inbreast": 0, "mini_mias": 3}},
    )
    html = build_report(root, OPTIONS).read_text(encoding="utf-8")
    note = "MG2: 3 finetuning lesion mask(s) are coarse masks (3 of mini_mias): approximate regions"
    data = html[html.index('<section id="data">') : html.index('<section id="results">')]
    results = html[html.index('<section id="results">') : html.index('<section id="curves">')]
    assert note in data and note in results
    assert html.count("are coarse masks") == 2 and "of inbreast" not in html  # counts of 0 left out
    assert f"## About the data\n\n- {note}" in _md(root, "report")
    assert "coarse mask" not in (built / "report" / "report.html").read_text(encoding="utf-8")
