"""VICReg (Bardes et al. 2022, "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning").

Both views go through the encoder and a 3-layer expander (lightly's
``VICRegProjectionHead``). The loss (§3, eq. 6) weighs three terms, each logged:
invariance (mean squared distance between the two views' embeddings), variance (a hinge
keeping each dimension's standard deviation above 1 in the batch) and covariance (squared
off-diagonal covariances, pushing dimensions apart). The terms are lightly's
``invariance_loss`` / ``variance_loss`` / ``covariance_loss``, combined as lightly's
``VICRegLoss`` and the authors' code combine them (the two variance terms averaged).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightly.loss.vicreg_loss import covariance_loss, invariance_loss, variance_loss
from lightly.models.modules.heads import VICRegProjectionHead
from lightly.utils import dist
from torch import nn

from medssl.models.encoder import FEATURE_DIM
from medssl.ssl import METHODS, SSLMethod


@dataclass
class VICRegConfig:
    # §3 (implementation details): lambda = mu = 25, nu = 1, epsilon = 1e-4.
    invariance_weight: float = 25.0  # lambda
    variance_weight: float = 25.0  # mu
    covariance_weight: float = 1.0  # nu
    eps: float = 1e-4
    # §3: three layers of 8,192 units. Departure: 2,048, for the reason given in
    # barlow_twins.py (134 M expander parameters over an 11 M ResNet-18 and ~1,000 images).
    projection_hidden_dim: int = 2048
    output_dim: int = 2048


def vicreg_terms(
    z0: torch.Tensor, z1: torch.Tensor, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(invariance, variance, covariance) of VICReg for embeddings z0, z1: (N, D), N >= 2.

    invariance = mean_{n,d} (z0 - z1)^2 (eq. 5);
    variance = ½ [v(z0) + v(z1)], v(z) = mean_d max(0, 1 - sqrt(Var_n(z_d) + eps)) (eq. 1-2,
    gamma = 1, unbiased variance);
    covariance = c(z0) + c(z1), c(z) = (1 / D) sum_{i != j} Cov(z)_ij^2 (eq. 3-4, unbiased).
    Under DDP the variance and covariance are taken over every rank's batch (lightly's
    autograd-aware ``dist.gather``), the invariance over this rank's pairs.
    """
    inv = invariance_loss(z0, z1)
    if dist.world_size() > 1:
        z0, z1 = torch.cat(dist.gather(z0)), torch.cat(dist.gather(z1))
    var = 0.5 * (variance_loss(z0, eps) + variance_loss(z1, eps))
    cov = covariance_loss(z0) + covariance_loss(z1)
    return inv, var, cov


@METHODS.register("vicreg")
class VICReg(SSLMethod):
    Config = VICRegConfig

    def __init__(self, encoder: nn.Module, config: VICRegConfig) -> None:
        super().__init__(encoder, config)
        self.projection_head = VICRegProjectionHead(
            FEATURE_DIM, config.projection_hidden_dim, config.output_dim
        )

    def compute_loss(self, views):
        x0, x1 = views  # (N, 1, 64, 64) each
        n = x0.shape[0]
        # One pass over both views: the expander's BN sees all 2N images.
        z = self.projection_head(self.encoder(torch.cat([x0, x1])))  # (2N, D)
        # Batch variances and covariances: fp32 under autocast.
        with torch.autocast(z.device.type, enabled=False):
            inv, var, cov = vicreg_terms(z[:n].float(), z[n:].float(), self.config.eps)
        c = self.config
        loss = c.invariance_weight * inv + c.variance_weight * var + c.covariance_weight * cov
        return loss, {
            "invariance": inv.detach(),
            "variance": var.detach(),
            "covariance": cov.detach(),
        }
