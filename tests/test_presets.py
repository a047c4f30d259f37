"""Presets: the thesis's values, the departures table shown in docs and report."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl import presets
from medssl.data.recipe import preset_names as recipe_preset_names
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


def test_medssl_finetune_defaults_to_the_medssl_preset():
    """`medssl finetune` without --preset, and resolve_config() without one, give
    presets/finetune_medssl.yaml's values."""
    from medssl.cli.main import build_parser
    from medssl.tasks.finetune import resolve_config

    args = build_parser().parse_args(
        ["finetune", "--task", "segmentation", "--database", "db", "--out", "run"]
    )
    assert args.preset == "medssl"
    cfg = resolve_config(task="segmentation")
    assert cfg == resolve_config(task="segmentation", preset="medssl")
    assert (cfg.batch_size, cfg.trainer.epochs) == (16, 100)
    opt = cfg.optimizer
    assert (opt.name, opt.lr, opt.reference_batch, opt.lr_scaling) == ("adam", 1e-3, 16, "sqrt")
    assert opt.schedule == "cosine" and opt.warmup_fraction == 0.05  # warm-up, then cosine
    assert cfg.augmentation == "light"
    assert cfg.trainer.patience is None  # no early stopping: best.pt chosen on validation


def test_thesis_byol_target_momentum_is_constant():
    """Thesis §5.2: a constant target momentum of 0.99 (BYOL's paper raises it on a cosine)."""
    from medssl.models.encoder import build_encoder
    from medssl.ssl import build_method
    from medssl.tasks.pretrain import resolve_config

    cfg = resolve_config("byol", preset="thesis")
    assert cfg.method_options.momentum == cfg.method_options.momentum_end == 0.99
    byol = build_method("byol", build_encoder(), cfg.method_options)
    assert {byol.momentum_at(step, 300) for step in (1, 150, 300)} == {0.99}
    medssl = resolve_config("byol", preset="medssl").method_options
    assert medssl.momentum_end == 1.0  # the medssl preset keeps the paper's cosine schedule


@pytest.mark.parametrize(
    ("verb", "names"),
    [
        (["benchmark"], lambda: presets.preset_names("benchmark")),
        (["pretrain"], lambda: presets.preset_names("pretrain")),
        (["finetune"], lambda: presets.preset_names("finetune")),
        (["data", "build"], lambda: recipe_preset_names()),
        (["data", "synth"], lambda: recipe_preset_names()),
    ],
)
def test_every_help_lists_the_registrys_presets(verb, names, capsys):
    """The preset list of each verb's ``--help`` is the registry's (issue 26: lists had
    drifted to 3 of 5 benchmark presets)."""
    from medssl.cli.main import main

    with pytest.raises(SystemExit):
        main([*verb, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert " | ".join(names()) in text
