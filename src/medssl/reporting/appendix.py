"""The report's appendices and provenance: every run's figures, the run list, resolved configs.

Pure functions of the run folders, ``plan.json`` and ``provenance.json``; no statistics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medssl.reporting import html as H
from medssl.reporting.inputs import DatabaseInfo, runs_of
from medssl.reporting.tables import Table, fmt_number
from medssl.runfiles import (
    CLASSIFICATION_CURVES,
    CONFIG,
    HEALTH,
    LOSS_CURVE,
    PROVENANCE,
    RUNS,
    SEGMENTATION_CURVES,
    TSNE,
)

APPENDICES = (
    ("A", "pretraining", "Appendix A: pretraining (loss curves, t-SNE)"),
    ("B", "classification", "Appendix B: classification fine-tuning"),
    ("C", "segmentation", "Appendix C: segmentation fine-tuning"),
)


PLAN_COLUMNS = (
    "run_id",
    "kind",
    "task",
    "database",
    "init",
    "method",
    "seed",
    "fold",
    "status",
    "seconds",
)


def runs_table(plan: Sequence[dict[str, Any]]) -> Table:
    """The benchmark's runs with their status and time (columns present in plan.json)."""
    cols = [c for c in PLAN_COLUMNS if any(c in r for r in plan)]
    rows = []
    for r in plan:
        cells = []
        for c in cols:
            v = r.get(c)
            if c in ("init", "task") and r.get("kind") == "pretrain":
                v = None  # a pretraining run has a method, not an init or task
            if c == "seconds" and isinstance(v, (int, float)):
                cells.append(fmt_number(float(v), 1))
            else:
                cells.append("" if v is None else str(v))
        rows.append(tuple(cells))
    total = sum(float(r["seconds"]) for r in plan if isinstance(r.get("seconds"), (int, float)))
    return Table(
        name="table_runs",
        title="Runs of the benchmark (plan.json)",
        columns=tuple(cols),
        rows=tuple(rows),
        notes=f"Total run time: {fmt_number(total, 1)} s over {len(plan)} runs.",
    )


# --- figures -----------------------------------------------------------------------------------


def run_identities(
    plan: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]]
) -> dict[str, dict]:
    """run_id -> what is known about it: plan.json first, then results.csv."""
    from_results = {
        run_id: dict(info, kind="finetune") for run_id, info in runs_of(records).items()
    }
    known: dict[str, dict] = {}
    for r in plan:
        if "run_id" in r:
            known[str(r["run_id"])] = {**from_results.get(str(r["run_id"]), {}), **r}
    for run_id, info in from_results.items():
        known.setdefault(run_id, info)
    return known


def appendix_of(info: dict[str, Any]) -> str:
    """'pretraining', 'classification', 'segmentation' or 'other'."""
    if info.get("kind") == "pretrain":
        return "pretraining"
    return info.get("task") if info.get("task") in ("classification", "segmentation") else "other"


def run_label(run_id: str, info: dict[str, Any]) -> str:
    """``simclr pretraining, seed 0 (pt-…)`` / ``random init, seed 1, fold 2 (ft-…)``."""
    if info.get("kind") == "pretrain":
        head = f"{info.get('method', '?')} pretraining"
    elif info.get("init") not in (None, ""):
        head = f"from {info['init']}" if info["init"] != "random" else "random init"
    else:
        head = "run"
    for k in ("seed", "fold"):
        if info.get(k) not in (None, ""):
            head += f", {k} {info[k]}"
    return f"{head} ({run_id})"


CAPTIONS: tuple[tuple[str, str], ...] = (
    (re.escape(LOSS_CURVE), "loss per epoch (train, validation)"),
    (re.escape(HEALTH), "health: kNN against random init, spread, alignment, uniformity"),
    (re.escape(TSNE), "t-SNE of the encoder's features of the finetuning images, by class"),
    (re.escape(CLASSIFICATION_CURVES), "accuracy, MCC, balanced accuracy and AUROC per epoch"),
    (re.escape(SEGMENTATION_CURVES), "Dice, IoU and pixel accuracy per epoch"),
    # the per-split figures: runfiles.roc_pr_figure, confusion_figure, examples_figure
    (r"roc_pr_(\w+)\.png", "ROC and precision-recall curves, {0} split"),
    (r"confusion_(\w+)\.png", "confusion matrix, {0} split"),
    (
        r"examples_(\w+)_(dice|iou)\.png",
        "best, middle and worst {0} images by {1} (TP green, FP red, FN blue)",
    ),
)
"""What each saved figure shows, in the order a run's figures are shown."""


def caption_of(name: str) -> tuple[int, str]:
    """(order, caption) of a figure file name; unknown names come last, captioned by name."""
    for i, (pattern, text) in enumerate(CAPTIONS):
        m = re.fullmatch(pattern, name)
        if m:
            return i, text.format(*(g.upper() if g in ("dice", "iou") else g for g in m.groups()))
    return len(CAPTIONS), name


def figures_sections(run_dir: Path, idents: dict[str, dict]) -> list[H.Section]:
    """Appendices A-C (and 'other'): every PNG of every run, grouped by database, then by run,
    each figure a captioned thumbnail that enlarges on click.

    Runs appear in the order of ``idents`` (plan.json, then results.csv), others by name.
    """
    runs_root = run_dir / RUNS
    found = {p.name: p for p in runs_root.iterdir() if p.is_dir()} if runs_root.is_dir() else {}
    order = [r for r in idents if r in found] + sorted(set(found) - set(idents))
    groups: dict[str, dict[str, list[str]]] = {}
    for run_id in order:
        folder, info = found[run_id], idents.get(run_id, {})
        pngs = sorted(folder.rglob("*.png"), key=lambda p: (caption_of(p.name)[0], p.name))
        label = run_label(run_id, info)
        if pngs:
            figs = "".join(H.figure_html(p, caption_of(p.name)[1]) for p in pngs)
            body = f"<h4>{H.esc(label)}</h4><div>{figs}</div>"
        else:
            body = f"<h4>{H.esc(label)}</h4>" + H.paragraph(
                "No figures were saved for this run.", "note"
            )
        by_db = groups.setdefault(appendix_of(info), {})
        by_db.setdefault(str(info.get("database") or "other"), []).append(body)
    sections = []
    for letter, key, title in APPENDICES:
        dbs = groups.get(key, {})
        body = "".join(f"<h3>{H.esc(db)}</h3>" + "".join(parts) for db, parts in dbs.items())
        body = body or H.paragraph(f"No {key} runs found under {runs_root}.", "note")
        sections.append(H.Section(f"appendix-{letter.lower()}", title, body))
    if groups.get("other"):
        body = "".join("".join(parts) for parts in groups["other"].values())
        sections.append(H.Section("appendix-other", "Other runs", body))
    return sections


# --- provenance --------------------------------------------------------------------------------


def provenance_body(
    run_dir: Path,
    provenance: dict[str, Any],
    databases: Sequence[DatabaseInfo],
    runs: Table,
    run_order: Sequence[str] = (),
) -> str:
    """Environment, data checksums, the run list with times, and every run's resolved config."""
    parts = []
    if provenance:
        scalars = {k: v for k, v in provenance.items() if not isinstance(v, dict)}
        parts.append(H.mapping_html(scalars, "Environment"))
        for key, value in provenance.items():
            if not isinstance(value, dict):
                continue
            if all(not isinstance(v, (dict, list)) for v in value.values()):
                parts.append(H.mapping_html(value, key.replace("_", " ")))
            else:  # nested (per-run configs, benchmark config): collapsible JSON
                parts.append(
                    H.details_html(
                        key.replace("_", " "),
                        json.dumps(value, indent=2, sort_keys=True, default=str),
                    )
                )
    else:
        parts.append(
            H.paragraph(f"{run_dir / PROVENANCE} not found: versions and device unknown.", "note")
        )
    if databases:
        parts.append(
            H.mapping_html(
                {d.name: d.meta.get("checksum", "missing (no database.json)") for d in databases},
                "Data checksums (database.json)",
            )
        )
    parts.append(
        H.table_html(runs)
        if runs.rows
        else H.paragraph("plan.json not found: no run list.", "note")
    )
    found = {p.parent.name: p for p in (run_dir / RUNS).glob(f"*/{CONFIG}")}
    order = [r for r in run_order if r in found] + sorted(set(found) - set(run_order))
    configs = [found[r] for r in order]
    if configs:
        parts.append("<h3>Resolved configurations</h3>")
        parts += [H.details_html(p.parent.name, p.read_text(encoding="utf-8")) for p in configs]
    else:
        parts.append(H.paragraph("No resolved config.yaml found in the run folders.", "note"))
    return "".join(parts)
