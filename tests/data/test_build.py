"""Database builder: quotas, roles, patients, duplicates, splits, bad input, atomicity."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from medssl.data.build import BuildOptions, build_database, open_sources
from medssl.data.database import Database
from medssl.data.recipe import Recipe
from medssl.data.records import CLASSES, Loaded, Record
from medssl.data.sources import SOURCES, Source
from medssl.errors import DataError


def _image(seed: int, h: int = 80, w: int = 112) -> np.ndarray:
    """Smooth random texture in [0, 1] (image-like, so resized copies stay correlated)."""
    x = gaussian_filter(np.random.default_rng(seed).random((h, w)), 1.5)
    return ((x - x.min()) / (x.max() - x.min())).astype(np.float32)


def _near_copy(img: np.ndarray) -> np.ndarray:
    """A resized, contrast-changed copy, as when one dataset redistributes another's image."""
    small = Image.fromarray(img, mode="F").resize((img.shape[1] * 3 // 4, img.shape[0] * 3 // 4))
    return np.clip(np.asarray(small) * 0.8 + 0.1, 0, 1).astype(np.float32)


class Toy(Source):
    """A source whose items are described by ``self.root / 'items.txt'`` lines:
    ``file label patient seed [flags]`` — pixels are generated from ``seed``. Flags: ``bad``
    (fails to load), ``near`` (a near copy of the seed's image), ``finding`` (a normal that
    shows a finding), ``nomask`` (a lesion label with an empty mask), ``tiny`` (a 1-px
    lesion), ``mm=R,C`` (pixel spacing)."""

    modality = "us"

    def records(self) -> list[Record]:
        out = []
        for line in (self.root / "items.txt").read_text().splitlines():
            file, label, patient, seed, *flags = line.split()
            img = _image(int(seed))
            if "near" in flags:
                img = _near_copy(img)
            mm = next((f[3:] for f in flags if f.startswith("mm=")), None)
            spacing = tuple(float(v) for v in mm.split(",")) if mm else None

            def load(img=img, file=file, label=label, flags=tuple(flags), spacing=spacing):
                if "bad" in flags:
                    raise DataError("truncated PNG (image file is truncated)", file=file)
                mask = np.zeros(img.shape, bool)
                if "tiny" in flags:
                    mask[40, 50] = True
                elif label != "normal" and "nomask" not in flags:
                    mask[10:20, 10:30] = True
                return Loaded(img, mask, spacing)

            out.append(
                Record(
                    "toy",
                    file,
                    label,
                    "us",
                    None if patient == "-" else patient,
                    (),
                    load,
                    has_mask=True,
                    normal_with_finding="finding" in flags,
                )
            )
        return sorted(out, key=lambda r: r.file)


Toy.registry_name = "toy"


@pytest.fixture(autouse=True)
def toy_source(monkeypatch):
    """Register the toy reader for this module's tests only (other modules parametrise over
    every registered source and must not see it)."""
    monkeypatch.setitem(SOURCES._items, "toy", Toy)


def write_items(root: Path, lines: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "items.txt").write_text("\n".join(lines) + "\n")
    return root


def toy_lines(n_per_class: int = 30, patients: bool = True) -> list[str]:
    lines, seed = [], 0
    for cls in ("normal", "benign", "malignant"):
        for i in range(n_per_class):
            patient = f"P{seed // 2}" if patients else "-"  # two images per patient
            lines.append(f"{cls}_{i:03d}.png {cls} {patient} {seed}")
            seed += 1
    return lines


def build(recipe: Recipe, roots: dict[str, Path], out: Path, **options) -> Path:
    """``build_database`` from the sources at ``roots``, opened as lenient as ``options`` say."""
    sources = open_sources(recipe, roots, lenient=options.get("lenient", False))
    return build_database(recipe, sources, out, BuildOptions(**options))


def recipe(ft: int = 10, pt: int = 10, **kw) -> Recipe:
    return Recipe(
        name="TOY",
        quotas={
            "finetune": {"toy": dict.fromkeys(("normal", "benign", "malignant"), ft)},
            "pretrain": {"toy": dict.fromkeys(("normal", "benign", "malignant"), pt)},
        },
        **kw,
    )


def test_quotas_roles_patients_and_splits(tmp_path):
    root = write_items(tmp_path / "toy", toy_lines())
    db = Database.load(build(recipe(), {"toy": root}, tmp_path / "db", seed=3))
    ft, pt = db.rows("finetune"), db.rows("pretrain")
    assert Counter(r.label for r in ft) == {"normal": 10, "benign": 10, "malignant": 10}
    assert Counter(r.label for r in pt) == {"normal": 10, "benign": 10, "malignant": 10}
    assert not {r.file for r in ft} & {r.file for r in pt}, "an image in both roles"
    assert not {r.patient for r in ft} & {r.patient for r in pt}, "a patient in both roles"
    for role in ("finetune", "pretrain"):
        split_of = defaultdict(set)
        for r in db.rows(role):
            split_of[r.patient].add(r.split)
        assert all(len(s) == 1 for s in split_of.values()), "a patient spans two splits"
    # 60/20/20 stratified: each class of 10 images (5 patients) gets 6/2/2
    counts = Counter((r.split, r.label) for r in ft)
    for cls in ("normal", "benign", "malignant"):
        assert (
            counts[("train", cls)] == 6 and counts[("val", cls)] == 2 and counts[("test", cls)] == 2
        )
    assert db.images("finetune").shape == (30, 64, 64) and db.images("finetune").dtype == np.uint8
    assert db.images("pretrain").shape == (30, 110, 110)
    masks = db.masks()
    labels = db.labels("finetune")
    assert masks[labels == 0].sum() == 0 and (masks[labels > 0].reshape(20, -1).sum(1) > 0).all()
    assert set(np.unique(masks)) <= {0, 1}


def test_same_seed_same_database_other_seed_other_split(tmp_path):
    root = write_items(tmp_path / "toy", toy_lines())
    a = Database.load(build(recipe(), {"toy": root}, tmp_path / "a", seed=1))
    b = Database.load(build(recipe(), {"toy": root}, tmp_path / "b", seed=1))
    c = Database.load(build(recipe(), {"toy": root}, tmp_path / "c", seed=2))
    assert a.checksum == b.checksum
    assert (tmp_path / "a" / "manifest.csv").read_bytes() == (
        tmp_path / "b" / "manifest.csv"
    ).read_bytes()
    assert a.checksum != c.checksum


def test_quota_larger_than_source_names_source_and_class(tmp_path):
    root = write_items(tmp_path / "toy", toy_lines(n_per_class=12))
    with pytest.raises(DataError, match=r"finetune/toy/benign: quota 20, 12 usable with masks"):
        build(recipe(ft=20, pt=0), {"toy": root}, tmp_path / "db")
    assert not (tmp_path / "db").exists()
    db = Database.load(build(recipe(ft=20, pt=0), {"toy": root}, tmp_path / "db", lenient=True))
    assert {s["class"] for s in db.meta.shortfalls} == {"normal", "benign", "malignant"}
    assert len(db.rows("finetune")) == 36


def test_bad_item_strict_names_file_lenient_counts_it(tmp_path):
    lines = toy_lines(n_per_class=12, patients=False)
    lines[0] += " bad"
    root = write_items(tmp_path / "toy", lines)
    with pytest.raises(DataError, match=r"normal_000\.png.*truncated"):
        build(recipe(ft=6, pt=6), {"toy": root}, tmp_path / "db")
    assert not (tmp_path / "db").exists(), "a failed build must leave nothing behind"
    assert not list(tmp_path.glob(".db*")), "no temporary folder left behind"
    path = build(recipe(ft=6, pt=5), {"toy": root}, tmp_path / "db", lenient=True)
    skipped = (path / "skipped.csv").read_text()
    assert "normal_000.png" in skipped and "truncated" in skipped
    assert len(Database.load(path).rows("pretrain")) == 15


def test_duplicates_across_roles_are_refused_and_within_role_share_a_split(tmp_path):
    lines = toy_lines(n_per_class=10, patients=False)
    # benign_000 and benign_001 are pixel-identical copies (seed 10) of one image
    lines[10] = "benign_000.png benign - 999"
    lines[11] = "benign_001.png benign - 999"
    root = write_items(tmp_path / "toy", lines)
    db = Database.load(
        build(recipe(ft=5, pt=5), {"toy": root}, tmp_path / "db", seed=0, lenient=True)
    )
    files = {r.file: r for r in db.manifest}
    dups = db.meta.duplicates
    both = {"benign_000.png", "benign_001.png"} & set(files)
    if len(both) == 2:  # both drawn: same role, same split, reported
        a, b = files["benign_000.png"], files["benign_001.png"]
        assert a.role == b.role and a.split == b.split
        assert dups and dups[0]["action"].startswith("kept")
    roles = {files[f].role for f in both}
    assert len(roles) <= 1, "a duplicate pair spans the two roles"
    assert all(d["kind"] == "exact" for d in dups)


def test_duplicate_in_other_role_is_refused(tmp_path):
    # n06 == n03, a normal that shows a finding: pretraining only, and its twin is finetuning's
    lines = [f"n{i:02d}.png normal - {i}" for i in range(6)] + ["n06.png normal - 3 finding"]
    root = write_items(tmp_path / "toy", lines)
    r = Recipe(
        name="T", quotas={"finetune": {"toy": {"normal": 6}}, "pretrain": {"toy": {"normal": 1}}}
    )
    with pytest.raises(DataError, match="after removing duplicates"):
        build(r, {"toy": root}, tmp_path / "db")
    db = Database.load(build(r, {"toy": root}, tmp_path / "db", lenient=True))
    assert db.meta.duplicates[0]["action"].startswith("refused")
    assert db.meta.label_conflicts["found"] == []
    assert "duplicate of toy:n03.png" in (tmp_path / "db" / "skipped.csv").read_text()


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"needs the source folder\(s\) of toy: pass --root"):
        build(recipe(), {}, tmp_path / "db")


def test_near_duplicate_in_other_role_is_refused(tmp_path):
    lines = [f"n{i:02d}.png normal - {i}" for i in range(6)] + [
        "n06.png normal - 3 near finding",
        "n07.png normal - 50 finding",
    ]
    root = write_items(tmp_path / "toy", lines)
    r = Recipe(
        name="T", quotas={"finetune": {"toy": {"normal": 6}}, "pretrain": {"toy": {"normal": 2}}}
    )
    db = Database.load(build(r, {"toy": root}, tmp_path / "db", lenient=True))
    assert [row.file for row in db.rows("pretrain")] == ["n07.png"]
    (dup,) = db.meta.duplicates
    assert (
        dup["kind"] == "near"
        and dup["twin"] == "toy:n03.png"
        and dup["action"].startswith("refused")
    )


def test_duplicates_whose_labels_differ_are_left_out_both(tmp_path):
    """m00 is b03's image labelled malignant, m01 a near copy of it: a label conflict. The
    malignant pair, drawn for finetuning first, and b03, drawn for pretraining, are all left
    out and counted; ``label_conflicts: keep`` keeps the pair and reports the conflict."""
    lines = [f"b{i:02d}.png benign - {i}" for i in range(8)] + [
        "m00.png malignant - 3",
        "m01.png malignant - 3 near",
        *[f"m{i:02d}.png malignant - {40 + i}" for i in range(2, 8)],
    ]
    root = write_items(tmp_path / "toy", lines)
    quotas = {"finetune": {"toy": {"malignant": 8}}, "pretrain": {"toy": {"benign": 8}}}
    r = Recipe(name="T", quotas=quotas, split_finetune=(0.5, 0.25, 0.25))
    with pytest.raises(DataError, match=r"finetune/toy/malignant: quota 8, 6 usable after"):
        build(r, {"toy": root}, tmp_path / "a")
    db = Database.load(build(r, {"toy": root}, tmp_path / "a", lenient=True))
    assert not {r.file for r in db.manifest} & {"b03.png", "m00.png", "m01.png"}
    assert len(db.rows("finetune")) == 6 and len(db.rows("pretrain")) == 7
    conflicts = db.meta.label_conflicts
    assert conflicts["policy"] == "exclude"
    ((found,),) = [conflicts["found"]]
    assert found["image"] == "toy:b03.png" and found["twin"] in {"toy:m00.png", "toy:m01.png"}
    assert found["labels"] == {"image": "benign", "twin": "malignant"}
    assert sorted(found["left_out"]) == ["toy:b03.png", "toy:m00.png", "toy:m01.png"]
    assert (tmp_path / "a" / "skipped.csv").read_text().count("label conflict") == 3
    assert db.meta.quotas_used == {
        "finetune": {"toy": {"malignant": 6}}, "pretrain": {"toy": {"benign": 7}}
    }  # fmt: skip
    kept = dataclasses.replace(r, label_conflicts="keep")
    db = Database.load(build(kept, {"toy": root}, tmp_path / "b", lenient=True))
    assert {"m00.png", "m01.png"} <= {r.file for r in db.rows("finetune")}
    assert [c["action"] for c in db.meta.label_conflicts["found"]] == ["kept"]


def test_balanced_mode_matches_rarest_class_and_modality_across_databases(tmp_path):
    from medssl.data.balance import balanced_recipes

    lines = [f"n{i:02d}.png normal - {i}" for i in range(12)]
    lines += [f"b{i:02d}.png benign - {100 + i}" for i in range(40)]
    lines += [f"m{i:02d}.png malignant - {200 + i}" for i in range(25)]
    root = write_items(tmp_path / "toy", lines)
    wide = {c: 1 for c in ("normal", "benign", "malignant")}
    a = Recipe(name="A", quotas={"finetune": {"toy": wide}, "pretrain": {"toy": wide}})
    small = [ln for ln in lines if not ln.startswith("m")][:40] + [
        ln for ln in lines if ln.startswith("m")
    ][:9]
    root_b = write_items(tmp_path / "toy_b", small)
    recs = {
        "A": open_sources(a, {"toy": root}, lenient=False).records,
        "B": open_sources(a, {"toy": root_b}, lenient=False).records,
    }
    b = Recipe(name="B", quotas=a.quotas)
    out_a, out_b = balanced_recipes([a, b], recs)
    # finetuning first: the rarest class anywhere (B's 9 malignant) sets every class of both
    assert (
        out_a.quotas["finetune"]["toy"]
        == out_b.quotas["finetune"]["toy"]
        == dict.fromkeys(("normal", "benign", "malignant"), 9)
    )
    # pretraining from what is left: B has 0 malignant left, A's normals 3 -> min is 0
    assert out_a.quotas["pretrain"] == out_b.quotas["pretrain"] == {}
    db = Database.load(build(out_a, {"toy": root}, tmp_path / "A"))
    assert Counter(r.label for r in db.rows("finetune")) == dict.fromkeys(
        ("normal", "benign", "malignant"), 9
    )


# --- label, mask, patient, spacing and phantom policies (docs/datasets.md) ----------------


def _with_findings(n_normal: int = 10, n_finding: int = 20, n_lesion: int = 30) -> list[str]:
    lines = [f"n{i:02d}.png normal - {i}" for i in range(n_normal)]
    lines += [f"w{i:02d}.png normal - {100 + i} finding" for i in range(n_finding)]
    lines += [f"b{i:02d}.png benign - {200 + i}" for i in range(n_lesion)]
    lines += [f"m{i:02d}.png malignant - {300 + i}" for i in range(n_lesion)]
    return lines


def test_a_normal_with_a_finding_is_never_a_finetuning_normal(tmp_path):
    root = write_items(tmp_path / "toy", _with_findings())
    r = Recipe(
        name="T",
        quotas={
            "finetune": {"toy": {"normal": 12, "benign": 10, "malignant": 10}},
            "pretrain": {"toy": {"normal": 15}},
        },
    )
    with pytest.raises(
        DataError, match=r"finetune/toy/normal: quota 12, 10 usable .*20 more .*finding"
    ):
        build(r, {"toy": root}, tmp_path / "db")
    db = Database.load(build(r, {"toy": root}, tmp_path / "db", lenient=True))
    ft, pt = db.rows("finetune"), db.rows("pretrain")
    assert sorted(x.file for x in ft if x.label == "normal") == [f"n{i:02d}.png" for i in range(10)]
    assert db.meta.shortfalls == [
        {"role": "finetune", "source": "toy", "class": "normal", "want": 12, "available": 10,
         "when": "before loading"}
    ]  # fmt: skip
    # pretraining may use them (the thesis's CBIS-DDSM counts): 15 of the 20, flagged
    assert len(pt) == 15 and all(x.normal_with_finding for x in pt)
    assert not any(x.normal_with_finding for x in ft)
    assert db.meta.normals_with_finding == {"toy": 15}


def test_balanced_mode_draws_no_finetuning_normal_with_a_finding(tmp_path):
    from medssl.data.balance import balanced_recipes

    root = write_items(tmp_path / "toy", _with_findings(n_normal=5, n_finding=30, n_lesion=20))
    wide = {c: 1 for c in ("normal", "benign", "malignant")}
    r = Recipe(name="A", quotas={"finetune": {"toy": wide}, "pretrain": {"toy": wide}})
    recs = {"A": open_sources(r, {"toy": root}, lenient=False).records}
    (out,) = balanced_recipes([r], recs)
    # the 5 normals without a finding set every finetuning class, not the 35 "normals"
    assert out.quotas["finetune"]["toy"] == dict.fromkeys(("normal", "benign", "malignant"), 5)
    # pretraining: the 30 with a finding remain for it; 15 benign/malignant are left
    assert out.quotas["pretrain"]["toy"] == dict.fromkeys(("normal", "benign", "malignant"), 15)
    db = Database.load(build(out, {"toy": root}, tmp_path / "db"))
    assert not any(x.normal_with_finding for x in db.rows("finetune"))
    assert sum(x.normal_with_finding for x in db.rows("pretrain")) == 15


def test_a_lesion_image_with_an_empty_mask_serves_classification_not_segmentation(tmp_path):
    lines = [f"n{i:02d}.png normal P{i} {i}" for i in range(6)]
    lines += [f"b{i:02d}.png benign P{10 + i} {10 + i}" for i in range(6)]
    lines += [f"m{i:02d}.png malignant P{20 + i} {20 + i} nomask" for i in range(3)]
    lines += [f"m{i:02d}.png malignant P{20 + i} {20 + i}" for i in range(3, 6)]
    root = write_items(tmp_path / "toy", lines)
    r = Recipe(name="T", quotas={"finetune": {"toy": dict.fromkeys(CLASSES, 6)}})
    db = Database.load(build(r, {"toy": root}, tmp_path / "db"))
    rows = {x.file: x for x in db.rows("finetune")}
    assert len(rows) == 18  # classification keeps all of them
    assert [f for f, x in sorted(rows.items()) if not x.has_mask] == [
        "m00.png",
        "m01.png",
        "m02.png",
    ]
    assert db.meta.empty_lesion_masks == {"toy": 3}
    masks = db.masks()
    assert masks[db.has_masks() & (db.labels() > 0)].reshape(9, -1).sum(1).min() > 0


def test_patient_known_spacing_and_small_lesions_are_recorded(tmp_path):
    lines = [f"n{i:02d}.png normal P{i} {i} mm=0.07,0.05" for i in range(4)]
    lines += [f"b{i:02d}.png benign - {10 + i} tiny" for i in range(4)]
    root = write_items(tmp_path / "toy", lines)
    r = Recipe(
        name="T",
        quotas={"finetune": {"toy": {"normal": 4, "benign": 4}}},
        split_finetune=(0.5, 0.25, 0.25),
    )
    db = Database.load(build(r, {"toy": root}, tmp_path / "db"))
    rows = db.rows("finetune")
    assert [x.patient_known for x in rows] == [False] * 4 + [True] * 4  # b.. sort before n..
    assert db.patients_known() == [False] * 4 + [True] * 4
    spacing = db.spacing_mm()
    assert np.isnan(spacing[:4]).all() and (spacing[4:] == [0.07, 0.05]).all()
    assert rows[4].spacing_row_mm == 0.07 and rows[4].spacing_col_mm == 0.05
    # a 1-px lesion in an 80 x 112 image padded to 112 and shrunk to 64: kept as one pixel
    assert db.meta.mask_resize["components"] == 4 and db.meta.mask_resize["rescued"] == 4
    assert (db.masks()[:4].reshape(4, -1).sum(1) == 1).all()
    assert db.meta.phantoms == ()


def test_phantom_sources_are_listed(tmp_path):
    from medssl.artifacts import write_json
    from medssl.data.phantoms import PHANTOM_MARKER

    root = write_items(tmp_path / "tree" / "toy", toy_lines(n_per_class=10, patients=False))
    r = recipe(ft=5, pt=5)
    db = Database.load(build(r, {"toy": root}, tmp_path / "a", phantoms=("toy",)))
    assert db.meta.phantoms == ("toy",) and db.phantoms == ["toy"]
    write_json(tmp_path / "tree" / PHANTOM_MARKER, {"roots": {"toy": str(root)}})
    db = Database.load(build(r, {"toy": root}, tmp_path / "b"))
    assert db.phantoms == ["toy"], "a folder written by write_phantom_tree is recognised"


def test_a_manifest_of_an_older_layout_is_refused_with_what_to_do(tmp_path, capsys):
    """One layout: a manifest without a column of this one (as builds before the column wrote
    it) is a named error that says to rebuild, not rows with unknown values."""
    import csv

    from medssl.cli.main import main

    root = write_items(tmp_path / "toy", toy_lines(n_per_class=10, patients=False))
    path = build(recipe(ft=5, pt=5), {"toy": root}, tmp_path / "db")
    new = ("patient_known", "spacing_row_mm", "spacing_col_mm", "normal_with_finding")
    with open(path / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(path / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, [c for c in rows[0] if c not in new])
        w.writeheader()
        w.writerows([{k: v for k, v in x.items() if k not in new} for x in rows])
    assert main(["data", "describe", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path / 'manifest.csv'}: columns role, index," in err
    assert "missing patient_known, spacing_row_mm, spacing_col_mm, normal_with_finding" in err
    assert "rebuild the database with `medssl data build`" in err


def test_describe_prints_image_sizes_and_the_policy_counts(tmp_path):
    from medssl.data.describe import describe

    root = write_items(tmp_path / "toy", _with_findings())
    r = Recipe(
        name="T",
        quotas={
            "finetune": {"toy": {"normal": 10, "benign": 10, "malignant": 10}},
            "pretrain": {"toy": {"normal": 15}},
        },
    )
    text = describe(Database.load(build(r, {"toy": root}, tmp_path / "db")))
    assert "image sizes: pretraining 110x110 px, finetuning 64x64 px" in text
    assert "pretraining normals that show a finding (never finetuning normals): 15" in text
    assert "empty mask (has_mask 0: classification only, not segmentation): 0" in text
    assert "20 lesion component(s), 0 too small" in text
    assert "finetuning: published patient ids for 0 of 30 images" in text
    assert "Synthetic phantoms" not in text


def test_in_memory_database_reads_like_a_built_one():
    db = Database.from_arrays(
        pretrain=np.zeros((2, 8, 8)),
        pretrain_split=["train", "val"],
        finetune=np.zeros((3, 8, 8)),
        finetune_masks=np.zeros((3, 8, 8)),
        finetune_labels=[0, 1, 2],
        finetune_split=["train", "val", "test"],
    )
    assert db.patients_known() == [False] * 3  # one patient group per image
    assert np.isnan(db.spacing_mm()).all() and db.spacing_mm().shape == (3, 2)
    assert db.phantoms == []


def test_balanced_mammography_takes_no_cbis_ddsm_lesion_as_a_finetuning_normal(tmp_path):
    """On phantoms of the real layouts, with the MG2/USMG3 mapping BENIGN_WITHOUT_CALLBACK ->
    normal: the balanced finetuning normals are INbreast's BI-RADS 1 images, none of the
    CBIS-DDSM lesions; pretraining still takes those (the thesis's pretraining counts)."""
    from medssl.data.balance import balanced_recipes
    from medssl.data.phantoms import write_source

    roots = {
        "cbis_ddsm": write_source(
            "cbis_ddsm", tmp_path / "cbis", {"benign": 24, "malignant": 16}, seed=0, scale=0.2,
            disagree=0, without_callback=0.5,
        ),
        "inbreast": write_source(
            "inbreast", tmp_path / "inbreast", {"normal": 6, "benign": 10, "malignant": 10},
            seed=0, scale=0.2, birads0=0,
        ),
    }  # fmt: skip
    wide = dict.fromkeys(("normal", "benign", "malignant"), 1)
    r = Recipe(
        name="MG",
        sources={"cbis_ddsm": {"bwc_as": "normal"}},
        quotas={
            "finetune": {"cbis_ddsm": wide, "inbreast": wide},
            "pretrain": {"cbis_ddsm": wide},
        },
    )
    recs = {"MG": open_sources(r, roots, lenient=False).records}
    with_finding = [x for x in recs["MG"]["cbis_ddsm"] if x.normal_with_finding]
    assert with_finding and all(x.label == "normal" for x in with_finding)
    (out,) = balanced_recipes([r], recs)
    assert out.quotas["finetune"]["inbreast"]["normal"] == 6
    assert "normal" not in out.quotas["finetune"].get("cbis_ddsm", {})
    db = Database.load(build(out, roots, tmp_path / "db", lenient=True))
    ft = db.rows("finetune")
    assert {x.source for x in ft if x.label == "normal"} == {"inbreast"}
    assert not any(x.normal_with_finding for x in ft)
    pt_normals = [x for x in db.rows("pretrain") if x.label == "normal"]
    assert pt_normals and all(x.normal_with_finding for x in pt_normals)
