"""Weights you bring: torchvision and timm ResNet-18 state dicts, written here, read onto the
1-channel encoder (conv1 summed over its input channels, fc dropped) or refused by name."""

from __future__ import annotations

import hashlib

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

import medssl
from medssl.errors import ConfigError
from medssl.models.classifier import build_classifier
from medssl.models.encoder import build_encoder, encoder_state_dict
from medssl.models.unet import build_unet
from medssl.models.weights import load_weights, weights_file


def torchvision_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(weights=None).state_dict()


def timm_state(seed: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return timm.create_model("resnet18", pretrained=False).state_dict()


def assert_folded(encoder: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """conv1 is the file's 3-channel filters summed over channels; every other tensor as is."""
    assert state["conv1.weight"].shape == (64, 3, 7, 7)
    expected = state["conv1.weight"].sum(dim=1, keepdim=True)
    torch.testing.assert_close(encoder.conv1.weight.detach(), expected, rtol=0, atol=0)
    loaded = encoder.state_dict()
    for k, v in state.items():
        if k != "conv1.weight" and not k.startswith("fc."):
            assert torch.equal(loaded[k], v), k


@pytest.mark.parametrize(
    ("layout", "suffix"),
    [("torchvision", ".pth"), ("torchvision", ".safetensors"), ("timm", ".pt"),
     ("timm", ".safetensors")],
)  # fmt: skip
def test_a_torchvision_or_timm_resnet18_loads_with_conv1_summed(tmp_path, layout, suffix):
    state = torchvision_state() if layout == "torchvision" else timm_state()
    path = tmp_path / f"{layout}{suffix}"
    if suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save(state, path)
    encoder = build_encoder()
    weights = load_weights(path, encoder)
    assert_folded(encoder, state)
    assert weights.record() == {
        "file": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "format": "safetensors" if suffix == ".safetensors" else "torch",
        "layout": "torchvision/timm ResNet",
        "conv1_folded_from": 3,
        "dropped": ["fc.bias", "fc.weight"],
    }
    # the notebook API, the classifier and the U-Net read the same file the same way
    assert_folded(medssl.load_encoder(path), state)
    assert_folded(build_classifier(path).encoder, state)
    assert_folded(build_unet(path).encoder, state)


def test_checkpoints_wrapping_a_resnet18_and_a_headless_timm_model_load(tmp_path):
    state = timm_state()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "checkpoint.pth")
    encoder = build_encoder()
    weights = load_weights(tmp_path / "checkpoint.pth", encoder)
    assert_folded(encoder, state)
    assert (
        weights.layout
        == "torchvision/timm ResNet in a checkpoint's 'state_dict', DDP 'module.' prefix"
    )
    # timm's in_chans=1, num_classes=0: already medssl's layout, loaded as is
    torch.manual_seed(2)
    grey = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=0)
    weights = load_weights(grey.state_dict(), encoder)
    assert weights.folded_channels is None and weights.dropped == () and weights.sha256 is None
    assert torch.equal(encoder.conv1.weight, grey.conv1.weight)


def test_a_resnet34_is_refused_naming_the_file_and_its_keys(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(ConfigError) as e:
        load_weights(path, build_encoder())
    msg = str(e.value)
    assert msg.startswith(f"{path}: does not fit medssl's 1-channel ResNet-18 encoder")
    assert "unexpected keys: layer1.2.bn1.bias" in msg and "(96 in all)" in msg
    assert "6 blocks in a stage where ResNet-18 has 2: a ResNet-34 or deeper" in msg
    assert "expected 120 tensors named as torchvision's resnet18 names them" in msg


def test_a_resnet50_a_truncated_dict_and_stray_keys_are_named_errors(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(ConfigError, match="bottleneck blocks .ResNet-50 or deeper"):
        load_weights(torchvision.models.resnet50(weights=None).state_dict(), build_encoder())
    state = torchvision_state()
    truncated = dict(list(state.items())[:60])
    with pytest.raises(ConfigError, match=r"missing keys: layer3\.0\.bn1\.bias.*\(60 in all\)"):
        load_weights(truncated, build_encoder())
    stray = {**encoder_state_dict(build_encoder()), "projection_head.0.weight": torch.zeros(2)}
    with pytest.raises(ConfigError, match=r"unexpected keys: projection_head\.0\.weight\)"):
        load_weights(stray, build_encoder())
    wrapped = {f"backbone.{k}": v for k, v in state.items()}
    with pytest.raises(ConfigError, match="every stray key starts with 'backbone'"):
        load_weights(wrapped, build_encoder())


def test_files_that_are_not_weights_are_named_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConfigError, match=f"{junk}: cannot be read as a PyTorch or safetensors"):
        load_weights(junk, build_encoder())
    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "ckpt.pt")
    with pytest.raises(ConfigError, match=r"entries that are not tensors \(epoch, optimizer\)"):
        load_weights(tmp_path / "ckpt.pt", build_encoder())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="--init .*empty: a folder with no encoder.pt, best.pt"):
        weights_file(tmp_path / "empty", flag="--init")
    with pytest.raises(ConfigError, match="no such file or folder; expected a weights file"):
        weights_file(tmp_path / "nope.pt")
