"""Barlow Twins (Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
Reduction").

Both views go through the encoder and a 3-layer projector (lightly's
``BarlowTwinsProjectionHead``); the loss drives the cross-correlation matrix of the two
batch-standardised projections towards the identity (eq. 1, lightly's ``BarlowTwinsLoss``):
sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2. No negatives, no momentum encoder, no
asymmetry; the redundancy term is what prevents collapse.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightly.loss import BarlowTwinsLoss
from lightly.models.modules import BarlowTwinsProjectionHead
from lightly.utils import dist
from torch import nn

from medssl.models.encoder import FEATURE_DIM
from medssl.ssl import METHODS, SSLMethod


@dataclass
class BarlowTwinsConfig:
    lambda_param: float = 5e-3  # redundancy-reduction weight, §2 (implementation details)
    # §2: three layers of 8,192 units. Departure: 2,048. Accuracy grows with the width in the
    # paper's ablation (§4, ImageNet), but two 8,192 x 8,192 layers hold 134 M parameters, 12x
    # the ResNet-18 under them, to be fitted on ~1,000 images of 64 px; 2,048 (9 M) is
    # solo-learn's ResNet-18 setting.
    projection_hidden_dim: int = 2048
    output_dim: int = 2048


@METHODS.register("barlow_twins")
class BarlowTwins(SSLMethod):
    Config = BarlowTwinsConfig

    def __init__(self, encoder: nn.Module, config: BarlowTwinsConfig) -> None:
        super().__init__(encoder, config)
        self.projection_head = BarlowTwinsProjectionHead(
            FEATURE_DIM, config.projection_hidden_dim, config.output_dim
        )
        # The paper normalises and correlates over the global batch (its BN is synchronised);
        # lightly's gather_distributed averages per-rank matrices of per-rank normalised
        # projections, which is another loss: under DDP compute_loss gathers the projections
        # (lightly's autograd-aware dist.gather) and every rank evaluates the global loss.
        self.criterion = BarlowTwinsLoss(lambda_param=config.lambda_param)

    def compute_loss(self, views):
        x0, x1 = views  # (N, 1, 64, 64) each
        n = x0.shape[0]
        # One pass over both views: the projector's BN sees all 2N images.
        z = self.projection_head(self.encoder(torch.cat([x0, x1])))  # (2N, D)
        z0, z1 = z[:n], z[n:]
        if self.training and dist.world_size() > 1:  # validation batches are whole per rank
            z0, z1 = torch.cat(dist.gather(z0)), torch.cat(dist.gather(z1))
        # Batch statistics and a D x D correlation near 1 on its diagonal: fp32 under autocast.
        with torch.autocast(z.device.type, enabled=False):
            loss = self.criterion(z0.float(), z1.float())
        return loss, {}
