"""`medssl data describe`: a database's tables in the form of thesis tables 5.2 and 5.3.

Table 5.2 counts images per role, source and class; table 5.3 per role, split and class.
Items left out (lenient mode, label rules), duplicates found and quota shortfalls follow.
"""

from __future__ import annotations

from collections import Counter

from medssl.artifacts import read_csv
from medssl.data.database import SPLITS, Database

THESIS_CLASS_ORDER = ("benign", "malignant", "normal")  # column order of thesis tables 5.1-5.3


def composition_rows(db: Database) -> list[dict[str, object]]:
    """Table 5.2 rows: role, source, one count per class, total (a 'total' row per role)."""
    rows: list[dict[str, object]] = []
    for role in ("pretrain", "finetune"):
        items = db.rows(role)
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


def split_rows(db: Database) -> list[dict[str, object]]:
    """Table 5.3 rows: role, split, one count per class, total."""
    rows: list[dict[str, object]] = []
    for role in ("pretrain", "finetune"):
        for split in SPLITS[role]:
            items = db.rows(role, split)
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


def describe(db: Database) -> str:
    meta = db.meta
    out = [f"# Database {db.name}", ""]
    out.append(
        f"checksum {meta.get('checksum', '?')[:12]}, seed {meta.get('seed', '?')}, "
        f"images {meta.get('recipe', {}).get('sizes', {})}"
    )
    out += [
        "",
        "## Table 5.2: images per source and class",
        "",
        markdown_table(composition_rows(db)),
    ]
    out += ["## Table 5.3: images per split and class", "", markdown_table(split_rows(db))]
    skipped = (
        read_csv(db.path / "skipped.csv") if db.path and (db.path / "skipped.csv").is_file() else []
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
    short = meta.get("shortfalls", [])
    if short:
        out += ["", f"## Quota shortfalls (lenient mode): {len(short)}"]
        for s in short:
            out.append(
                f"- {s['role']}/{s['source']}/{s['class']}: wanted {s['want']}, got {s['available']}"
            )
    return "\n".join(out) + "\n"
