"""Classifier and U-Net: shapes, encoder loading, linear-probe and frozen-encoder segmentation
freezing, Dice + BCE loss."""

from __future__ import annotations

import pytest
import torch

from medssl.errors import ConfigError
from medssl.models.classifier import build_classifier
from medssl.models.encoder import build_encoder, encoder_state_dict
from medssl.models.unet import DiceBCELoss, build_unet


@pytest.fixture
def encoder_file(tmp_path):
    torch.manual_seed(0)
    enc = build_encoder()
    path = tmp_path / "encoder.pt"
    torch.save(encoder_state_dict(enc), path)
    return path, enc


def test_classifier_loads_encoder_and_gives_logits(encoder_file):
    path, enc = encoder_file
    model = build_classifier(path)
    assert torch.equal(model.encoder.conv1.weight, enc.conv1.weight)
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 3)


def test_unet_loads_encoder_as_is(encoder_file):
    path, enc = encoder_file
    unet = build_unet(path)
    assert torch.equal(unet.encoder.layer4[1].conv2.weight, enc.layer4[1].conv2.weight)
    assert unet(torch.zeros(2, 1, 64, 64)).shape == (2, 1, 64, 64)


def test_freeze_encoder_is_a_linear_probe():
    model = build_classifier("random", freeze_encoder=True)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert not model.encoder.training and model.head.training  # BN statistics stay fixed
    before = model.encoder.bn1.running_mean.clone()
    model(torch.randn(4, 1, 64, 64))
    assert torch.equal(model.encoder.bn1.running_mean, before)


def _segmentation_step(freeze_encoder: bool) -> tuple[dict, dict, torch.nn.Module]:
    """One training step of the segmentation task's network, built and optimised as a
    fine-tuning run does (trainable parameters only, the medssl preset's optimizer): the
    encoder's and the decoder's state (parameters and BatchNorm buffers) before, and the net."""
    from medssl.engine.optim import build_optimizer
    from medssl.tasks.finetune import resolve_config
    from medssl.tasks.segment import SegmentationTask

    cfg = resolve_config(task="segmentation", overrides={"freeze_encoder": freeze_encoder})
    torch.manual_seed(0)
    net = SegmentationTask(cfg).build("random", None)
    net.train()
    enc, dec = net.model.encoder, net.model.decoder
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (enc, dec)]
    params = [p for p in net.parameters() if p.requires_grad]
    opt = build_optimizer(params, cfg.optimizer, batch_size=cfg.batch_size)
    mask = torch.zeros(4, 1, 64, 64)
    mask[:, :, 16:40, 20:44] = 1
    loss, _ = net.training_step({"x": torch.randn(4, 1, 64, 64) + mask, "mask": mask})
    loss.backward()
    opt.step()
    return before[0], before[1], net


def _changed(before: dict, module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


def test_frozen_encoder_segmentation_trains_the_decoder_only():
    enc, dec, net = _segmentation_step(freeze_encoder=True)
    assert not net.model.encoder.training and net.model.decoder.training
    assert not any(p.requires_grad for p in net.model.encoder.parameters())
    assert _changed(enc, net.model.encoder) == set()  # weights and BN running statistics
    changed = _changed(dec, net.model.decoder)
    assert any(k.endswith("weight") for k in changed)  # the decoder learns
    assert any(k.endswith("running_mean") for k in changed)  # its BN statistics move
    # the control: fine-tuning the whole U-Net changes the encoder's weights and statistics
    enc, _, net = _segmentation_step(freeze_encoder=False)
    changed = _changed(enc, net.model.encoder)
    assert "conv1.weight" in changed and "bn1.running_mean" in changed


def test_wrong_encoder_names_the_keys(tmp_path):
    state = encoder_state_dict(build_encoder())
    state["conv1.weight"] = torch.zeros(64, 2, 7, 7)
    del state["layer4.1.bn2.bias"]
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    for build in (build_classifier, build_unet):
        with pytest.raises(
            ConfigError, match=r"input channels differ.*missing keys: layer4.1.bn2.bias"
        ):
            build(path)


def test_dice_bce_loss_known_values():
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :2] = 1
    good = DiceBCELoss()(target * 40 - 20, target)
    bad = DiceBCELoss()(20 - target * 40, target)
    assert good.item() == pytest.approx(0.0, abs=1e-4)
    assert bad.item() > 10
