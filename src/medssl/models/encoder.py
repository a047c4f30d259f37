"""The encoder: torchvision ResNet-18 with a 1-channel 7x7 stride-2 stem and no ``fc``.

The thesis design keeps the ImageNet stem (7x7 stride-2 conv + max-pool) on 64 px grey images;
a CIFAR-style stem would be about 16x slower here. ``forward`` gives (N, 512) features;
``feature_map`` gives the last stage's (N, 512, h, w) map before pooling (for dense methods).

The exported artifact (``encoder.pt``) is ``encoder_state_dict(model)``: a plain torchvision
ResNet-18 state dict without ``fc.*`` keys, with ``conv1.weight`` of shape (64, 1, 7, 7). It
loads as is into ``build_encoder()`` and into
``segmentation_models_pytorch.Unet("resnet18", encoder_weights=None, in_channels=1).encoder``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from torch import nn

from medssl.errors import ConfigError

FEATURE_DIM = 512
"""Width of the ResNet-18 pooled features (the input of every projection head)."""


def build_encoder(in_channels: int = 1) -> torchvision.models.ResNet:
    """A randomly initialised ResNet-18: x (N, in_channels, H, W) -> features (N, 512)."""
    model = torchvision.models.resnet18(weights=None)
    # Same 7x7 stride-2 stem as ImageNet ResNet-18, only the input channels change (thesis §5.2).
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.fc = nn.Identity()
    return model


def feature_map(encoder: torchvision.models.ResNet, x: torch.Tensor) -> torch.Tensor:
    """x (N, C, H, W) -> ``layer4``'s map (N, 512, h, w), h = ceil(H / 32): 2 x 2 at 64 px.

    The layers of torchvision's ``ResNet.forward`` up to the average pool, so ``encoder(x)``
    is this map's mean over its h * w positions (``fc`` is the identity).
    """
    x = encoder.maxpool(encoder.relu(encoder.bn1(encoder.conv1(x))))
    return encoder.layer4(encoder.layer3(encoder.layer2(encoder.layer1(x))))


def encoder_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The torchvision-compatible state dict of ``model`` (no ``fc.*``), detached, on the CPU."""
    return {
        k: v.detach().cpu().clone()
        for k, v in model.state_dict().items()
        if not k.startswith("fc.")
    }


def load_encoder(
    path_or_state: str | os.PathLike | Mapping[str, torch.Tensor], model: nn.Module
) -> nn.Module:
    """Load an ``encoder.pt`` (path or state dict) into ``model`` strictly; return ``model``.

    ``fc.*`` keys of the model (a plain torchvision ResNet) are allowed to be absent. Any other
    missing, unexpected or mismatched-shape key raises a ConfigError that lists them (and says
    when the input-channel count differs).
    """
    where = "encoder state dict"
    if isinstance(path_or_state, (str, os.PathLike)):
        where = str(path_or_state)
        path = Path(path_or_state)
        if not path.is_file():
            raise ConfigError(
                f"{path}: encoder file not found; expected the encoder.pt of a pretraining run"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated, foreign or non-torch file
            raise ConfigError(
                f"{path}: cannot be read as a PyTorch state dict ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:120]}); expected the encoder.pt of a pretraining run"
            ) from None
    else:
        state = dict(path_or_state)
    if not isinstance(state, Mapping):
        raise ConfigError(
            f"{where}: expected a state dict (name -> tensor), got {type(state).__name__}"
        )

    target = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    mismatched = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
        for k in set(state) & set(target)
        if tuple(state[k].shape) != tuple(target[k].shape)
    )
    if missing or unexpected or mismatched:
        parts = []
        if "conv1.weight" in state and "conv1.weight" in target:
            c_file, c_model = state["conv1.weight"].shape[1], target["conv1.weight"].shape[1]
            if c_file != c_model:
                parts.append(f"input channels differ: file has {c_file}, model expects {c_model}")
        for name, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("mismatched shape", mismatched),
        ):
            if keys:
                shown = ", ".join(keys[:8]) + (
                    f", ... ({len(keys)} in all)" if len(keys) > 8 else ""
                )
                parts.append(f"{name} keys: {shown}")
        raise ConfigError(
            f"{where}: does not fit a 1-channel torchvision ResNet-18 encoder ({'; '.join(parts)}); "
            "use the encoder.pt written by `medssl pretrain`"
        )
    model.load_state_dict(dict(state), strict=False)
    return model
