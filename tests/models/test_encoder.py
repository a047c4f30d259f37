"""The encoder artifact: a 1-channel torchvision ResNet-18 state dict without fc."""

from __future__ import annotations

import pytest
import torch
import torchvision

from medssl.errors import ConfigError
from medssl.models.encoder import build_encoder, encoder_state_dict, feature_map
from medssl.models.weights import load_weights


def test_forward_shape_and_stem():
    m = build_encoder()
    assert m.conv1.weight.shape == (64, 1, 7, 7) and m.conv1.stride == (2, 2)
    m.eval()
    with torch.no_grad():
        assert m(torch.zeros(2, 1, 64, 64)).shape == (2, 512)


def test_export_loads_into_torchvision_and_smp(tmp_path):
    torch.manual_seed(0)
    src = build_encoder()
    state = encoder_state_dict(src)
    assert not any(k.startswith("fc.") for k in state)
    torch.save(state, tmp_path / "encoder.pt")
    loaded = torch.load(tmp_path / "encoder.pt", weights_only=True)

    tv = torchvision.models.resnet18(weights=None)
    tv.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    del tv.fc
    tv.load_state_dict(loaded, strict=True)
    assert torch.equal(tv.conv1.weight, src.conv1.weight)

    import segmentation_models_pytorch as smp

    unet = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)
    unet.encoder.load_state_dict(loaded, strict=True)
    assert torch.equal(unet.encoder.layer4[1].conv2.weight, src.layer4[1].conv2.weight)

    load_weights(tmp_path / "encoder.pt", fresh := build_encoder())
    assert torch.equal(fresh.bn1.running_var, src.bn1.running_var)


def test_load_weights_names_bad_keys_and_channels(tmp_path):
    state = encoder_state_dict(build_encoder(in_channels=2))
    state["extra.weight"] = torch.zeros(1)
    del state["layer1.0.bn1.bias"]
    with pytest.raises(ConfigError) as e:
        load_weights(state, build_encoder())
    msg = str(e.value)
    assert "input channels differ: file has 2, model expects 1" in msg
    assert "missing keys: layer1.0.bn1.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "conv1.weight: file (64, 2, 7, 7) vs model (64, 1, 7, 7)" in msg
    with pytest.raises(ConfigError, match="no such file or folder"):
        load_weights(tmp_path / "nope.pt", build_encoder())


def test_feature_map_is_the_map_forward_pools():
    torch.manual_seed(0)
    m = build_encoder().eval()
    x = torch.randn(3, 1, 64, 64)
    with torch.no_grad():
        fmap = feature_map(m, x)
        assert fmap.shape == (3, 512, 2, 2)
        assert torch.allclose(fmap.mean(dim=(2, 3)), m(x), atol=1e-6)
        assert feature_map(m, torch.randn(2, 1, 32, 32)).shape == (2, 512, 1, 1)
