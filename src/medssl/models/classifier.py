"""Classifier: the 1-channel ResNet-18 encoder plus one linear layer over the 3 classes.

``x (N, 1, 64, 64) in [-1, 1] -> logits (N, 3)``. The encoder starts from weights you bring
(a pretraining run's ``encoder.pt``, a torchvision or timm ResNet-18: ``models.weights``) or
from torchvision's random (Kaiming) initialisation. With ``freeze_encoder``
the encoder's weights get no gradient and its BatchNorm statistics stay fixed (a linear probe).
"""

from __future__ import annotations

import os

from torch import Tensor, nn

from medssl.data.records import CLASSES
from medssl.models.encoder import FEATURE_DIM, build_encoder
from medssl.models.weights import load_weights


class Classifier(nn.Module):
    def __init__(
        self, encoder: nn.Module, n_classes: int = len(CLASSES), *, freeze_encoder: bool = False
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(FEATURE_DIM, n_classes)
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if self.freeze_encoder:  # a linear probe keeps the pretrained BatchNorm statistics
            self.encoder.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, 1, H, W) -> logits (N, n_classes)."""
        return self.head(self.encoder(x))


def build_classifier(
    init: str | os.PathLike = "random",
    *,
    n_classes: int = len(CLASSES),
    freeze_encoder: bool = False,
) -> Classifier:
    """A classifier whose encoder is random (``init="random"``) or loaded from weights
    (:func:`medssl.models.weights.load_weights`: an ``encoder.pt``, a torchvision or timm
    ResNet-18, a run folder). Another architecture raises a ConfigError listing the keys.
    """
    encoder = build_encoder(in_channels=1)
    if str(init) != "random":
        load_weights(init, encoder)
    return Classifier(encoder, n_classes, freeze_encoder=freeze_encoder)
