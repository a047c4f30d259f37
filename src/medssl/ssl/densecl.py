"""DenseCL (Wang et al. 2021, "Dense Contrastive Learning for Self-Supervised Visual
Pre-Training"): MoCo v2 plus a contrastive loss between positions of the encoder's last
feature map, meant for dense tasks (segmentation).

Query encoder and heads are trained; the key encoder and heads are their moving average
(lightly's ``update_momentum``). Two heads (lightly's ``DenseCLProjectionHead``, Linear-ReLU-
Linear without BN; applied per position it is the paper's 1x1-conv dense head):

- global: on the pooled features, InfoNCE against a queue of past keys (MoCo v2, §3.1);
- dense: on each of the S = h * w positions of ``models.encoder.feature_map``. A query
  position's positive is the key position whose *backbone* feature is most similar (cosine,
  §3.3; lightly's ``select_most_similar``), so no geometric correspondence between the two
  crops is needed; its negatives are a second queue holding, per past key image, the mean of
  its dense key projections (§3.2, as in the authors' code).

Loss: (1 - lambda) * global + lambda * dense (eq. 4). At 64 px the map is 2 x 2 (S = 4)
instead of the paper's 7 x 7 at 224 px; at 32 px it is 1 x 1 and the dense term is a second
global term.

Both queues and the EMA change only in ``after_optimizer_step`` (keys of the last training
step wait in ``_pending_keys``), with the queue mechanics of ``ssl/moco.py``: buffers (so
checkpoints carry them), FIFO with wrap-around, every rank's keys gathered under DDP; keys
go through ``moco.forward_in_groups`` after a random permutation (shuffled BN, MoCo §3.3).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from lightly.models.modules import DenseCLProjectionHead
from lightly.models.utils import deactivate_requires_grad, select_most_similar, update_momentum
from lightly.utils import dist
from torch import nn

from medssl.models.encoder import FEATURE_DIM, feature_map
from medssl.ssl import METHODS, SSLMethod
from medssl.ssl.moco import (
    average_running_stats,
    forward_in_groups,
    groups_per_rank,
    info_nce,
    shuffled_forward,
)


@dataclass
class DenseCLConfig:
    temperature: float = 0.2  # §4 (pre-training setup), as MoCo v2
    loss_lambda: float = 0.5  # weight of the dense term, eq. 4 and §4 (its ablation)
    # §4 follows MoCo v2's 0.999. Departure: 0.99 (MoCo v1 §4.1 ablation, ImageNet linear
    # 57.8 vs 59.0). A ~1,000-image database gives ~15 steps an epoch at batch 64: at 0.999
    # the key encoder averages ~1,000 steps, two thirds of a 100-epoch run; at 0.99, ~7 epochs.
    momentum: float = 0.99
    # §4: 65,536 keys in each queue. Departure: 512. A queue longer than an epoch's keys
    # (~1,000 here) holds stale keys of the query's own image among its negatives (65,536
    # keys would hold ~65 of each image); 512 holds at most one.
    queue_size: int = 512
    hidden_dim: int = 512  # head hidden width = feature width (the paper: 2,048 = ResNet-50's)
    output_dim: int = 128  # §4: 128-d global and dense keys
    shuffle_bn_groups: int = 2  # BN groups standing in for shuffled BN on one device (moco.py)


def dense_loss(
    q_dense: torch.Tensor,
    k_dense: torch.Tensor,
    q_features: torch.Tensor,
    k_features: torch.Tensor,
    queue: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """DenseCL's dense term (eq. 3), mean over all N * S query positions.

    q_dense, k_dense: (N, S, D) L2-normalised dense projections of the query and key views;
    q_features, k_features: (N, S, C) backbone features at the same positions, any norm;
    queue: (K, D) L2-normalised negatives. Query position (n, s) takes as positive the key
    position j = argmax_j cos(q_features[n, s], k_features[n, j]) of the same image, and is
    scored with InfoNCE against the queue (``moco.info_nce``).
    """
    positives = select_most_similar(q_features, k_features, k_dense)  # (N, S, D)
    return info_nce(q_dense.flatten(0, 1), positives.flatten(0, 1), queue, temperature)


class FeatureMap(nn.Module):
    """``encoder``'s spatial feature map (N, 512, h, w) as a module (for the BN groups)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return feature_map(self.encoder, x)


@METHODS.register("densecl")
class DenseCL(SSLMethod):
    Config = DenseCLConfig
    sync_batchnorm = False  # per-device BN groups are the point of shuffled BN (moco.py)

    def __init__(self, encoder: nn.Module, config: DenseCLConfig) -> None:
        super().__init__(encoder, config)
        self.global_head = DenseCLProjectionHead(FEATURE_DIM, config.hidden_dim, config.output_dim)
        self.dense_head = DenseCLProjectionHead(FEATURE_DIM, config.hidden_dim, config.output_dim)
        self.key_encoder = copy.deepcopy(encoder)
        self.key_global_head = copy.deepcopy(self.global_head)
        self.key_dense_head = copy.deepcopy(self.dense_head)
        for module in (self.key_encoder, self.key_global_head, self.key_dense_head):
            deactivate_requires_grad(module)
        k, d = config.queue_size, config.output_dim
        self.register_buffer("queue", F.normalize(torch.randn(k, d), dim=1))
        self.register_buffer("dense_queue", F.normalize(torch.randn(k, d), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self._pending_keys: tuple[torch.Tensor, torch.Tensor] | None = None

    def _heads(
        self, fmap: torch.Tensor, global_head: nn.Module, dense_head: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """fmap (N, C, h, w) -> global (N, D), dense (N, S, D) normalised, positions (N, S, C)."""
        positions = fmap.flatten(2).transpose(1, 2)  # (N, S, C)
        g = F.normalize(global_head(fmap.mean(dim=(2, 3))), dim=1)  # the encoder's pooling
        return g, F.normalize(dense_head(positions), dim=2), positions

    def _query(self, x: torch.Tensor):
        groups = groups_per_rank(self.config.shuffle_bn_groups, dist.world_size())
        fmap = forward_in_groups((FeatureMap(self.encoder),), x, groups)
        return self._heads(fmap, self.global_head, self.dense_head)

    @torch.no_grad()
    def _key(self, x: torch.Tensor):
        nets = (FeatureMap(self.key_encoder),)
        fmap = shuffled_forward(nets, x, self.config.shuffle_bn_groups)
        return self._heads(fmap, self.key_global_head, self.key_dense_head)

    def _loss_and_keys(self, views):
        x0, x1 = views  # (N, 1, 64, 64) each: query view, key view
        q, q_dense, q_pos = self._query(x0)
        k, k_dense, k_pos = self._key(x1)
        c = self.config
        loss_global = info_nce(q, k, self.queue.clone(), c.temperature)
        loss_dense = dense_loss(
            q_dense, k_dense, q_pos, k_pos, self.dense_queue.clone(), c.temperature
        )
        loss = (1 - c.loss_lambda) * loss_global + c.loss_lambda * loss_dense
        dense_keys = F.normalize(k_dense.mean(dim=1), dim=1)  # (N, D): one negative per image
        logs = {"global_loss": loss_global.detach(), "dense_loss": loss_dense.detach()}
        return loss, logs, (k, dense_keys)

    def compute_loss(self, views):
        loss, logs, _ = self._loss_and_keys(views)
        return loss, logs

    def training_step(self, views):
        loss, logs, keys = self._loss_and_keys(views)
        self._pending_keys = (keys[0].detach(), keys[1].detach())
        return loss, logs

    @torch.no_grad()
    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        m = self.config.momentum
        update_momentum(self.encoder, self.key_encoder, m=m)
        update_momentum(self.global_head, self.key_global_head, m=m)
        update_momentum(self.dense_head, self.key_dense_head, m=m)
        if self._pending_keys is not None:
            keys, dense_keys = self._pending_keys
            if dist.world_size() > 1:  # DDP: every rank enqueues all ranks' keys, in rank order
                keys, dense_keys = torch.cat(dist.gather(keys)), torch.cat(dist.gather(dense_keys))
            self.enqueue(keys, dense_keys)
            self._pending_keys = None
        if dist.world_size() > 1:  # the ranks' BN groups updated their own running statistics
            average_running_stats(self)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, dense_keys: torch.Tensor) -> None:
        """Write keys and dense keys (B, D) at the shared pointer, wrapping around (FIFO)."""
        size = self.queue.shape[0]
        keys, dense_keys = keys[-size:], dense_keys[-size:]
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[idx] = keys.to(self.queue.dtype)
        self.dense_queue[idx] = dense_keys.to(self.dense_queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % size)
