"""BYOL (Grill et al. 2020, "Bootstrap Your Own Latent").

Online network = encoder + projector + predictor; target network = EMA of encoder +
projector (lightly's ``update_momentum``, momentum on lightly's ``cosine_schedule``), changed
only in ``after_optimizer_step``. Loss: symmetric 2 - 2·cos(p, sg(z')) (BYOL eq. 2 and the
symmetrised loss of §3.2). The loss is per image, so under DDP it needs no gather: with
batch norm over the global batch (the trainer's ``engine.sync_batchnorm``) N devices
compute the one-device loss and gradient.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from medssl.models.encoder import FEATURE_DIM
from medssl.ssl import METHODS, SSLMethod


@dataclass
class BYOLConfig:
    momentum: float = 0.99  # target EMA tau_base, BYOL §3.2 / thesis §5.2
    # BYOL §3.2 raises tau to 1 on a cosine over training; set equal to `momentum` for a constant.
    momentum_end: float = 1.0
    projection_hidden_dim: int = 4096  # BYOL §3.3
    output_dim: int = 256  # BYOL §3.3
    prediction_hidden_dim: int = 4096  # BYOL §3.3


def byol_loss(p: torch.Tensor, z: torch.Tensor, criterion: nn.Module) -> torch.Tensor:
    """2 - 2·cos(p, z), mean over the batch. p, z: (N, D), any norm; z is the (detached) target."""
    return 2 + 2 * criterion(p, z)  # lightly's NegativeCosineSimilarity gives -mean(cos)


@METHODS.register("byol")
class BYOL(SSLMethod):
    Config = BYOLConfig

    def __init__(self, encoder: nn.Module, config: BYOLConfig) -> None:
        super().__init__(encoder, config)
        self.projection_head = BYOLProjectionHead(
            FEATURE_DIM, config.projection_hidden_dim, config.output_dim
        )
        self.prediction_head = BYOLPredictionHead(
            config.output_dim, config.prediction_hidden_dim, config.output_dim
        )
        self.target_encoder = copy.deepcopy(encoder)
        self.target_head = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.target_encoder)
        deactivate_requires_grad(self.target_head)
        self.criterion = NegativeCosineSimilarity()

    def compute_loss(self, views):
        x0, x1 = views  # (N, 1, 64, 64) each
        n = x0.shape[0]
        x = torch.cat([x0, x1])
        p = self.prediction_head(self.projection_head(self.encoder(x)))  # (2N, D)
        with torch.no_grad():
            z = self.target_head(self.target_encoder(x)).detach()  # (2N, D)
        loss = byol_loss(p[:n], z[n:], self.criterion) + byol_loss(p[n:], z[:n], self.criterion)
        return loss, {}

    def momentum_at(self, step: int, total_steps: int) -> float:
        """EMA momentum after optimizer step ``step`` (1-based) of ``total_steps``."""
        return cosine_schedule(
            step - 1, total_steps, self.config.momentum, self.config.momentum_end
        )

    @torch.no_grad()
    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        m = self.momentum_at(step, total_steps)
        update_momentum(self.encoder, self.target_encoder, m=m)
        update_momentum(self.projection_head, self.target_head, m=m)
