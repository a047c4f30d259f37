"""Batch-norm statistics for eval-mode outputs: the epoch's average and precise BN, known answers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medssl.engine.batchnorm import average_epoch_bn, recompute_bn


def _batches():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(n, 3, 4, 4, generator=g) * s + m for n, s, m in ((5, 1, 0), (7, 2, 3))]


def test_the_epoch_average_weighs_each_training_batch_equally_from_scratch():
    bn = nn.BatchNorm2d(3)
    bn.running_mean.fill_(9.0)  # what an earlier epoch left: forgotten
    bn.train()
    average_epoch_bn(bn)
    batches = _batches()
    for x in batches:
        bn(x)
    means = torch.stack([x.mean((0, 2, 3)) for x in batches])
    variances = torch.stack([x.var((0, 2, 3), unbiased=True) for x in batches])
    assert torch.allclose(bn.running_mean, means.mean(0), atol=1e-6)
    assert torch.allclose(bn.running_var, variances.mean(0), atol=1e-5)
    assert int(bn.num_batches_tracked) == 2 and bn.momentum is None


def test_layers_in_eval_mode_keep_their_statistics():
    frozen, trained = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    frozen.running_mean.fill_(5.0)
    model = nn.Sequential(frozen, trained)
    model.train()
    frozen.eval()  # a frozen encoder
    average_epoch_bn(model)
    for x in _batches():
        model(x)
    assert torch.equal(frozen.running_mean, torch.full((3,), 5.0)) and frozen.momentum == 0.1
    assert trained.momentum is None and int(trained.num_batches_tracked) == 2


def test_precise_bn_is_the_average_over_the_given_batches_under_current_weights():
    bn = nn.BatchNorm2d(3)
    bn.eval()
    batches = _batches()
    recompute_bn(bn, batches)
    assert not bn.training  # the mode is restored
    means = torch.stack([x.mean((0, 2, 3)) for x in batches])
    # update_bn's cumulative average over batches (each batch weighs the same)
    assert torch.allclose(bn.running_mean, means.mean(0), atol=1e-6)


@pytest.mark.parametrize("mode", ["epoch", "precise", "running"])
def test_finetuning_reads_the_statistics_it_is_told_to(mode, tiny_db, tmp_path):
    """bn_statistics, observed in best.pt: BatchNorm counts the batches its statistics hold —
    the epoch's 3 training steps (epoch), the 3 chunks of the training split (precise), or
    every step so far (running)."""
    from medssl.tasks.finetune import run_finetune

    out = run_finetune(
        tiny_db, tmp_path / mode, task="classification", preset="demo", seed=0,
        overrides=["trainer.epochs=2", "batch_size=3", "trainer.precision=32-true",
                   f"bn_statistics={mode}", "figure_splits=[]"],
        progress=False,
    )  # fmt: skip
    best = torch.load(out / "best.pt", weights_only=True)
    epoch = int(best["epoch"])
    tracked = {int(v) for k, v in best["model"].items() if k.endswith("num_batches_tracked")}
    steps = 3  # 9 training images, batch 3
    assert tracked == {steps * (epoch + 1) if mode == "running" else steps}


def test_an_unknown_bn_statistics_is_refused():
    from medssl.errors import ConfigError
    from medssl.tasks.finetune import resolve_config

    with pytest.raises(ConfigError, match="bn_statistics: 'exact' is not one of epoch, precise"):
        resolve_config(None, task="classification", overrides=["bn_statistics=exact"])
    assert resolve_config(None, task="classification").bn_statistics == "epoch"
    assert resolve_config(None, task="segmentation", preset="thesis").bn_statistics == "epoch"
