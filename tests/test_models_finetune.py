"""Classifier and U-Net: shapes, encoder loading, linear-probe freezing, Dice + BCE loss."""

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


def test_wrong_encoder_names_the_keys(tmp_path):
    state = encoder_state_dict(build_encoder())
    state["conv1.weight"] = torch.zeros(64, 3, 7, 7)
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
