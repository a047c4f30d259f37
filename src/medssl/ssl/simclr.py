"""SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations").

Both views go through the encoder and a 2-layer MLP projection head with batch norm (thesis
§5.2); NT-Xent over the 2N - 2 in-batch negatives (lightly's ``NTXentLoss``, which
L2-normalises the projections).

Under DDP the negatives of all ranks are gathered in training (``gather_distributed``, so
the loss sees the global batch's 2N - 2 negatives) and batch norm is global (the trainer's
``engine.sync_batchnorm``; SimCLR §2.2 "Global BN"). Validation batches are whole on every
rank, so validation does not gather.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead

from medssl.models.encoder import FEATURE_DIM
from medssl.ssl import METHODS, SSLMethod


@dataclass
class SimCLRConfig:
    temperature: float = 0.07  # NT-Xent temperature, thesis §5.2
    hidden_dim: int = 512  # projection MLP, one hidden layer as wide as the features (SimCLR §2.1; lightly's ResNet-18 example)
    output_dim: int = 128  # projection output, SimCLR §B.9 (128-d)


@METHODS.register("simclr")
class SimCLR(SSLMethod):
    Config = SimCLRConfig

    def __init__(self, encoder: torch.nn.Module, config: SimCLRConfig) -> None:
        super().__init__(encoder, config)
        self.projection_head = SimCLRProjectionHead(
            FEATURE_DIM, config.hidden_dim, config.output_dim, num_layers=2, batch_norm=True
        )
        self.criterion = NTXentLoss(temperature=config.temperature, gather_distributed=True)
        self.local_criterion = NTXentLoss(temperature=config.temperature)

    def compute_loss(self, views):
        x0, x1 = views  # (N, 1, 64, 64) each
        n = x0.shape[0]
        # One pass over both views: batch-norm statistics over all 2N images, as in SimCLR's global BN.
        z = self.projection_head(self.encoder(torch.cat([x0, x1])))  # (2N, D)
        criterion = self.criterion if self.training else self.local_criterion
        loss = criterion(z[:n], z[n:])
        return loss, {}
