"""U-Net for binary lesion segmentation on the same 1-channel ResNet-18 encoder.

``segmentation_models_pytorch.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)``:
its encoder is a torchvision ResNet without ``fc``, so a pretraining run's ``encoder.pt`` loads
into ``unet.encoder`` as is (and other ResNet-18 weights through ``models.weights``). ``x (N, 1, H, W) -> logits (N, 1, H, W)``, H and W multiples of 32.
Nothing is ever downloaded (``encoder_weights=None``).
"""

from __future__ import annotations

import os

import segmentation_models_pytorch as smp
from torch import Tensor, nn

from medssl.models.weights import load_weights


def build_unet(init: str | os.PathLike = "random", *, freeze_encoder: bool = False) -> smp.Unet:
    """A U-Net whose encoder is random (``init="random"``) or loaded from weights
    (:func:`medssl.models.weights.load_weights`). Another architecture raises a ConfigError
    listing the keys.
    With ``freeze_encoder`` only the decoder and head are trained (encoder BatchNorm in eval
    mode is the task's job, see :class:`medssl.tasks.segment.Segmentation`).
    """
    model = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)
    if str(init) != "random":
        load_weights(init, model.encoder)
    if freeze_encoder:
        model.encoder.requires_grad_(False)
    return model


class DiceBCELoss(nn.Module):
    """Dice + BCE on logits: ``smp.losses.DiceLoss(mode="binary")`` + ``BCEWithLogitsLoss``.

    logits: (N, 1, H, W); target: (N, 1, H, W) {0, 1} float. Returns a scalar.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dice = smp.losses.DiceLoss(mode="binary", from_logits=True)
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        target = target.to(logits.dtype)
        return self.dice(logits, target) + self.bce(logits, target)
