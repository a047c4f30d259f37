"""The encoder: torchvision ResNet-18 with a 1-channel 7x7 stride-2 stem and no ``fc``.

The thesis design keeps the ImageNet stem (7x7 stride-2 conv + max-pool) on 64 px grey images;
a CIFAR-style stem would be about 16x slower here. ``forward`` gives (N, 512) features;
``feature_map`` gives the last stage's (N, 512, h, w) map before pooling (for dense methods).

The exported artifact (``encoder.pt``) is ``encoder_state_dict(model)``: a plain torchvision
ResNet-18 state dict without ``fc.*`` keys, with ``conv1.weight`` of shape (64, 1, 7, 7). It
loads as is into ``build_encoder()`` and into
``segmentation_models_pytorch.Unet("resnet18", encoder_weights=None, in_channels=1).encoder``.
Reading one back, or any other ResNet-18 weights (torchvision's, timm's, safetensors), is
``medssl.models.weights.load_weights``.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

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
