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
from medssl.data.database import SKIPPED_FILE, Database
from medssl.data.manifest import SPLITS
from medssl.data.meta import DatabaseMeta

THESIS_CLASS_ORDER = ("benign", "malignant", "normal")  # column order of thesis tables 5.1-5.3


def composition_rows(manifest: Sequence[Mapping[str, Any]]) -> list[dict[str, object]]:
    """Table 5.2 rows of one database's manifest rows, as manifest.csv holds them
    (:meth:`~medssl.data.manifest.ManifestRow.csv`, or the file as the report reads it): role,
    source, one count per class (in the thesis's column order), total, and a 'total' row per
    role. The one definition of the table: ``medssl data describe`` and the benchmark report
    both print it."""
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


def image_sizes(meta: DatabaseMeta) -> str:
    """'pretraining 110x110 px, finetuning 64x64 px' from the recipe saved in ``meta``."""
    sizes = meta.sizes
    names = (("pretrain", "pretraining"), ("finetune", "finetuning"))
    parts = [f"{word} {sizes[k]}x{sizes[k]} px" for k, word in names if k in sizes]
    return ", ".join(parts) or "unknown"


def describe(db: Database) -> str:
    meta = db.meta
    out = [f"# Database {db.name}", ""]
    if db.phantoms:
        out += [f"**Synthetic phantoms, not patient data:** {', '.join(db.phantoms)}", ""]
    out.append(
        f"checksum {meta.checksum[:12]}, seed {meta.seed}, image sizes: {image_sizes(meta)}, "
        f"tasks: {', '.join(meta.tasks)}"
    )
    if meta.recipe is not None and meta.recipe.crop != "none":
        out.append(f"mammograms cropped: {meta.crop.get('rule', meta.recipe.crop)}")
    rows = [r.csv() for r in db.manifest]
    out += ["", "## Table 5.2: images per source and class", ""]
    out += [markdown_table(composition_rows(rows))]
    out += ["## Table 5.3: images per split and class", "", markdown_table(split_rows(rows))]
    out += _left_out_lines(db) + _duplicate_lines(meta) + _quota_lines(meta)
    out += ["", *policy_lines(db)]
    return "\n".join(out) + "\n"


def _left_out_lines(db: Database) -> list[str]:
    """Items left out (skipped.csv), by source and reason."""
    file = db.path / SKIPPED_FILE if db.path is not None else None
    skipped = read_csv(file) if file is not None and file.is_file() else []
    out = [f"## Left out: {len(skipped)} item(s)"]
    for (source, reason), n in sorted(Counter((s["source"], s["reason"]) for s in skipped).items()):
        out.append(f"- {source}: {n} × {reason}")
    return out


def _duplicate_lines(meta: DatabaseMeta) -> list[str]:
    """Duplicates found, and the duplicates whose labels differ (label conflicts)."""
    dups = meta.duplicates
    out = ["", f"## Duplicates found: {len(dups)}"]
    for d in dups:
        out.append(
            f"- {d['kind']}: {d['image']} ({d['role']}) ~ {d['twin']} ({d['twin_role']}): {d['action']}"
        )
    found = meta.label_conflicts["found"]
    out += ["", f"## Label conflicts (duplicates whose labels differ): {len(found)}"]
    out.append(f"policy: {meta.label_conflicts['policy']} (recipe label_conflicts)")
    for c in found:
        out.append(
            f"- {c['kind']}: {c['image']} ({c['labels']['image']}) ~ {c['twin']} "
            f"({c['labels']['twin']}): {c['action']}"
        )
    return out


def _quota_lines(meta: DatabaseMeta) -> list[str]:
    """Sources left out (--available-sources), shortfalls, and the quotas used when fitted."""
    out = []
    if meta.left_out_sources:
        out += ["", f"## Sources left out (--available-sources): {len(meta.left_out_sources)}"]
        for source, per_role in meta.left_out_sources.items():
            parts = [f"{role} {sum(per_class.values())}" for role, per_class in per_role.items()]
            out.append(f"- {source}: quotas dropped ({', '.join(parts)} images)")
    if meta.shortfalls:
        how = "--fit-quotas" if meta.fit_quotas else "--lenient"
        out += ["", f"## Quota shortfalls ({how}): {len(meta.shortfalls)}"]
        for s in meta.shortfalls:
            out.append(
                f"- {s['role']}/{s['source']}/{s['class']}: wanted {s['want']}, "
                f"{s['available']} available"
            )
    if meta.fit_quotas:
        out += ["", "## Quotas used (fitted to the sources, class ratios kept)"]
        for role, per_source in meta.quotas_used.items():
            for source, per_class in per_source.items():
                cells = ", ".join(f"{c} {n}" for c, n in sorted(per_class.items()))
                out.append(f"- {role}/{source}: {cells}")
    return out


def policy_lines(db: Database) -> list[str]:
    """The label and mask policies' counts, and the patients and spacings known."""
    meta = db.meta
    out = ["## Labels, masks, patients, spacing"]
    for counts, text in (
        (meta.normals_with_finding, "pretraining normals that show a finding (never "
         "finetuning normals)"),
        (meta.empty_lesion_masks, "finetuning benign/malignant images with an empty mask "
         "(has_mask 0: classification only, not segmentation)"),
    ):  # fmt: skip
        per = ", ".join(f"{s} {k}" for s, k in counts.items() if k)
        out.append(f"- {text}: {sum(counts.values())}" + (f" ({per})" if per else ""))
    if meta.coarse_masks:
        per = ", ".join(f"{s} {k}" for s, k in meta.coarse_masks.items())
        out.append(
            f"- coarse masks (approximate regions, not outlines; manifest coarse_mask 1): "
            f"{sum(meta.coarse_masks.values())} ({per})"
        )
    crop = meta.crop
    if crop and crop.get("cropped"):
        out.append(
            f"- breast crop: {crop['cropped']} mammogram(s) cropped, {crop['widened_for_mask']} "
            "widened to hold their lesion mask"
        )
    out += _mask_resize_lines(meta.mask_resize)
    for role, word in (("pretrain", "pretraining"), ("finetune", "finetuning")):
        rows = db.rows(role)
        if rows:
            out.append(
                f"- {word}: published patient ids for {sum(r.patient_known for r in rows)} of "
                f"{len(rows)} images (the others: one group per image or duplicate group); "
                f"pixel spacing known for {sum(r.spacing_row_mm is not None for r in rows)}"
            )
    return out if len(out) > 1 else []


def _mask_resize_lines(resize: Mapping[str, Any]) -> list[str]:
    if not resize:  # an in-memory database
        return []
    per = ", ".join(
        f"{s} {c['rescued']}/{c['components']}"
        for s, c in resize["by_source"].items()
        if c["rescued"]
    )
    return [
        f"- mask downsampling ({resize['rule']}): {resize['components']} lesion "
        f"component(s), {resize['rescued']} too small for the coverage rule kept as one "
        "pixel" + (f" ({per})" if per else "")
    ]
