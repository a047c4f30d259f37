"""Presets: the thesis's values, the departures table shown in docs and report."""

from __future__ import annotations

from pathlib import Path

from medssl.reporting.departures import departures_table
from medssl.reporting.tables import to_markdown
from medssl.tasks.finetune import load_preset as finetune_preset

DOCS = Path(__file__).resolve().parent.parent / "docs" / "thesis.md"


def test_docs_show_the_departures_table_as_the_report_renders_it():
    table = departures_table()
    assert len(table.rows) >= 5
    assert to_markdown(table) in DOCS.read_text(encoding="utf-8")


def test_thesis_fine_tuning_is_the_thesis():
    cfg = finetune_preset("thesis")
    assert (cfg.trainer.epochs, cfg.batch_size, cfg.optimizer.name) == (100, 64, "adam")
    assert cfg.optimizer.weight_decay == 1e-6 and cfg.optimizer.schedule == "constant"
    assert cfg.augmentation == "none"  # §5.3: supervised images unaltered
    assert cfg.trainer.patience is None  # no early stopping in the thesis
