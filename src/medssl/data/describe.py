"""`medssl data describe`: a database's tables in the form of thesis tables 5.2 and 5.3.

Table 5.2 counts images per role, source and class; table 5.3 per role, split and class.
Items left out (lenient mode, label rules), duplicates and label conflicts found, sources
left out (``--available-sources``) and quota shortfalls (with the quotas used when they were
fitted) follow, then the label and mask policies' counts (``docs/datasets.md``, "What serves which task"):
normals that show a finding, lesion images without a mask, lesions kept by the mask
downsampling, and which images have a published patient id and a known pixel spacing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from medssl.artifacts import read_csv
from medssl.data.database import SKIPPED_FILE, SPLITS, Database

THESIS_CLASS_ORDER = ("benign", "malignant", "normal")  # column order of thesis tables 5.1-5.3


def composition_rows(manifest: Sequence[Mapping[str, Any]]) -> list[dict[str, object]]:
    """Table 5.2 rows of one database's manifest rows: role, source, one count per class (in
    the thesis's column order), total, and a 'total' row per role. The one definition of the
    table: ``medssl data describe`` and the benchmark report both print it."""
    rows: list[dict[str, object]] = []
    for role in ("pretrain", "finetune"):
        items = [r for r in manifest if r["role"] == role]
        count = Counter((r["source"], r["label"]) for r in items)
        for source in sorted({r["source"] for r in items}):
            row: dict[str, object] = {"role": role, "source": source}
            row.update({c: count[(source, c)] for c in THESIS_CLASS_ORDER})
            row["total"] = sum(count[(source, c)] for c in THESIS_CLASS_ORDER)
            rows.append(row)
        total: dict[str, object] = {"role": role, "source": "total"}
        total.update({c: sum(1 for r in items if r["label"] == c) for c in THESIS_CLASS_ORDER})
        total["total"] = len(items)
        rows.append(total)
    return rows


def split_rows(manifest: Sequence[Mapping[str, Any]]) -> list[dict[str, object]]:
    """Table 5.3 rows of one database's manifest rows: role, split, one count per class (the
    thesis's column order), total. The one definition, as :func:`composition_rows`."""
    rows: list[dict[str, object]] = []
    for role in ("pretrain", "finetune"):
        for split in SPLITS[role]:
            items = [r for r in manifest if r["role"] == role and r["split"] == split]
            row: dict[str, object] = {"role": role, "split": split}
            row.update({c: sum(1 for r in items if r["label"] == c) for c in THESIS_CLASS_ORDER})
            row["total"] = len(items)
            rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "(empty)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def image_sizes(meta: dict) -> str:
    """'pretraining 110x110 px, finetuning 64x64 px' from the recipe saved in ``meta``."""
    sizes = meta.get("recipe", {}).get("sizes", {})
    names = (("pretrain", "pretraining"), ("finetune", "finetuning"))
    parts = [f"{word} {sizes[k]}x{sizes[k]} px" for k, word in names if k in sizes]
    return ", ".join(parts) or "unknown"


def describe(db: Database) -> str:
    meta = db.meta
    out = [f"# Database {db.name}", ""]
    if db.phantoms:
        out += [
            f"**Synthetic phantoms, not patient data:** {', '.join(db.phantoms)}",
            "",
        ]
    tasks = meta.get("tasks", ["classification", "segmentation"])
    out.append(
        f"checksum {meta.get('checksum', '?')[:12]}, seed {meta.get('seed', '?')}, "
        f"image sizes: {image_sizes(meta)}, tasks: {', '.join(tasks)}"
    )
    crop = meta.get("recipe", {}).get("crop", "none")
    if crop != "none":
        out.append(f"mammograms cropped: {meta.get('crop', {}).get('rule', crop)}")
    out += [
        "",
        "## Table 5.2: images per source and class",
        "",
        markdown_table(composition_rows(db.manifest)),
    ]
    out += ["## Table 5.3: images per split and class", "", markdown_table(split_rows(db.manifest))]
    skipped = (
        read_csv(db.path / SKIPPED_FILE) if db.path and (db.path / SKIPPED_FILE).is_file() else []
    )
    out.append(f"## Left out: {len(skipped)} item(s)")
    for (source, reason), n in sorted(Counter((s["source"], s["reason"]) for s in skipped).items()):
        out.append(f"- {source}: {n} × {reason}")
    dups = meta.get("duplicates", [])
    out += ["", f"## Duplicates found: {len(dups)}"]
    for d in dups:
        out.append(
            f"- {d['kind']}: {d['image']} ({d['role']}) ~ {d['twin']} ({d['twin_role']}): {d['action']}"
        )
    conflicts = meta.get("label_conflicts")
    if conflicts is not None:
        found = conflicts["found"]
        out += ["", f"## Label conflicts (duplicates whose labels differ): {len(found)}"]
        out.append(f"policy: {conflicts['policy']} (recipe label_conflicts)")
        for c in found:
            out.append(
                f"- {c['kind']}: {c['image']} ({c['labels']['image']}) ~ {c['twin']} "
                f"({c['labels']['twin']}): {c['action']}"
            )
    left_out = meta.get("left_out_sources") or {}
    if left_out:
        out += ["", f"## Sources left out (--available-sources): {len(left_out)}"]
        for source, per_role in left_out.items():
            parts = [f"{role} {sum(per_class.values())}" for role, per_class in per_role.items()]
            out.append(f"- {source}: quotas dropped ({', '.join(parts)} images)")
    short = meta.get("shortfalls", [])
    if short:
        how = "--fit-quotas" if meta.get("fit_quotas") else "--lenient"
        out += ["", f"## Quota shortfalls ({how}): {len(short)}"]
        for s in short:
            out.append(
                f"- {s['role']}/{s['source']}/{s['class']}: wanted {s['want']}, "
                f"{s['available']} available"
            )
    if meta.get("fit_quotas"):
        out += ["", "## Quotas used (fitted to the sources, class ratios kept)"]
        for role, per_source in meta.get("quotas_used", {}).items():
            for source, per_class in per_source.items():
                cells = ", ".join(f"{c} {n}" for c, n in sorted(per_class.items()))
                out.append(f"- {role}/{source}: {cells}")
    out += ["", *policy_lines(db)]
    return "\n".join(out) + "\n"


def policy_lines(db: Database) -> list[str]:
    """The label and mask policies' counts, for databases that record them."""
    meta = db.meta
    out = ["## Labels, masks, patients, spacing"]
    with_finding = meta.get("normals_with_finding")
    if with_finding is not None:
        n = sum(with_finding.values())
        per = ", ".join(f"{s} {k}" for s, k in with_finding.items() if k)
        out.append(
            f"- pretraining normals that show a finding (never finetuning normals): {n}"
            + (f" ({per})" if per else "")
        )
    empty = meta.get("empty_lesion_masks")
    if empty is not None:
        n = sum(empty.values())
        per = ", ".join(f"{s} {k}" for s, k in empty.items() if k)
        out.append(
            f"- finetuning benign/malignant images with an empty mask (has_mask 0: "
            f"classification only, not segmentation): {n}" + (f" ({per})" if per else "")
        )
    coarse = meta.get("coarse_masks") or {}
    if coarse:
        per = ", ".join(f"{s} {k}" for s, k in coarse.items())
        out.append(
            f"- coarse masks (approximate regions, not outlines; manifest coarse_mask 1): "
            f"{sum(coarse.values())} ({per})"
        )
    crop = meta.get("crop")
    if crop and crop.get("cropped"):
        out.append(
            f"- breast crop: {crop['cropped']} mammogram(s) cropped, {crop['widened_for_mask']} "
            "widened to hold their lesion mask"
        )
    resize = meta.get("mask_resize")
    if resize is not None:
        per = ", ".join(
            f"{s} {c['rescued']}/{c['components']}"
            for s, c in resize["by_source"].items()
            if c["rescued"]
        )
        out.append(
            f"- mask downsampling ({resize['rule']}): {resize['components']} lesion "
            f"component(s), {resize['rescued']} too small for the coverage rule kept as one "
            "pixel" + (f" ({per})" if per else "")
        )
    for role, word in (("pretrain", "pretraining"), ("finetune", "finetuning")):
        rows = db.rows(role)
        known = [r["patient_known"] for r in rows]
        spacing = [r["spacing_row_mm"] is not None for r in rows]
        if rows and None not in known:
            out.append(
                f"- {word}: published patient ids for {sum(known)} of {len(rows)} images "
                f"(the others: one group per image or duplicate group); pixel spacing known "
                f"for {sum(spacing)}"
            )
    return out if len(out) > 1 else []
