"""SimSiam (Chen & He 2021, "Exploring Simple Siamese Representation Learning").

One encoder f = backbone + projection MLP, a prediction MLP h on one side and a stop-gradient
on the other; no negatives, no momentum encoder (lightly's ``SimSiamProjectionHead`` and
``SimSiamPredictionHead``). Loss: the symmetrised negative cosine of eq. 4,
½ D(p0, sg(z1)) + ½ D(p1, sg(z0)), in [-1, 1]. Without the stop-gradient the method
collapses (§4.1); the collapse guard of ``engine.monitor`` is that section's std measure.

The paper keeps the predictor's learning rate fixed (§4.2, Table 1); pretraining here has no
learning-rate schedule, so every parameter already has one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import SimSiamPredictionHead, SimSiamProjectionHead
from torch import nn

from medssl.models.encoder import FEATURE_DIM
from medssl.ssl import METHODS, SSLMethod


@dataclass
class SimSiamConfig:
    # §3 (baseline settings): 3-layer projector with BN on every layer, output 2048-d.
    projection_hidden_dim: int = 2048
    output_dim: int = 2048
    # §3: the predictor is a bottleneck, hidden 512 = output / 4 (ablated in the supplement).
    prediction_hidden_dim: int = 512


def simsiam_loss(
    p0: torch.Tensor,
    p1: torch.Tensor,
    z0: torch.Tensor,
    z1: torch.Tensor,
    criterion: nn.Module,
) -> torch.Tensor:
    """SimSiam eq. 4: ½ D(p0, sg(z1)) + ½ D(p1, sg(z0)), D = -mean cos (lightly's
    ``NegativeCosineSimilarity``). p*, z*: (N, D) predictions and projections of views 0 and
    1, any norm. The projections are detached: gradients reach the encoder only through p."""
    return 0.5 * (criterion(p0, z1.detach()) + criterion(p1, z0.detach()))


@METHODS.register("simsiam")
class SimSiam(SSLMethod):
    Config = SimSiamConfig

    def __init__(self, encoder: nn.Module, config: SimSiamConfig) -> None:
        super().__init__(encoder, config)
        self.projection_head = SimSiamProjectionHead(
            FEATURE_DIM, config.projection_hidden_dim, config.output_dim
        )
        self.prediction_head = SimSiamPredictionHead(
            config.output_dim, config.prediction_hidden_dim, config.output_dim
        )
        self.criterion = NegativeCosineSimilarity()

    def compute_loss(self, views):
        x0, x1 = views  # (N, 1, 64, 64) each
        n = x0.shape[0]
        # One pass over both views: batch-norm statistics over all 2N images, as in BYOL here.
        z = self.projection_head(self.encoder(torch.cat([x0, x1])))  # (2N, D)
        p = self.prediction_head(z)  # (2N, D)
        return simsiam_loss(p[:n], p[n:], z[:n], z[n:], self.criterion), {}
