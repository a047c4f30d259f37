"""MoCo v2 (He et al. 2020, "Momentum Contrast ..."; Chen et al. 2020, "Improved Baselines ...").

The query encoder and MLP head are trained; the key encoder and head are their exponential
moving average (lightly's ``update_momentum``), and the negatives are a queue of past keys.
Both the EMA and the queue change only in ``after_optimizer_step``; the keys of the last
training step wait in ``_pending_keys`` until then. Under DDP the keys of every rank are
gathered (lightly's ``dist.gather``) before they are enqueued, so all ranks hold the same
queue of the global batch's keys, as in MoCo's multi-GPU implementation.

lightly's ``NTXentLoss(memory_bank_size=...)`` would update its bank inside ``forward``
(also in validation), so the queue and its InfoNCE loss are written here, in a few lines.

Shuffled batch norm (He et al. 2020 §3.3) stops the model from finding the positive key by
batch statistics shared with its query. The global batch is split into
``shuffle_bn_groups`` contiguous groups, each normalised with its own BN statistics:
queries in order, keys after a random permutation of the global batch, so a query and its
key are normalised with statistics of different subsets. On one device the groups are
chunks of the batch. Under DDP on W devices each rank holds W-th of the batch and
normalises ``shuffle_bn_groups / W`` of the groups with plain (per-device) BN, and the keys
are shuffled across ranks as in MoCo's multi-GPU code (``_batch_shuffle_ddp``): so
``shuffle_bn_groups = G`` on one device and on W devices (G a multiple of W, the global
batch a multiple of G) compute the same losses, gradients, queue and BN running statistics
(each step updates them once, from the mean of the groups' statistics, and under DDP the
ranks average theirs). MoCo's paper (one BN group per GPU) is G = W.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from lightly.models.modules import MoCoProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils import dist
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from medssl.errors import ConfigError
from medssl.models.encoder import FEATURE_DIM
from medssl.ssl import METHODS, SSLMethod


@dataclass
class MoCoConfig:
    temperature: float = 0.07  # InfoNCE temperature, thesis §5.2 (MoCo v1 §4: 0.07)
    momentum: float = 0.999  # key-encoder EMA, MoCo §3.2 / thesis §5.2
    # The EMA momentum rises from `momentum` to `momentum_end` on a cosine over training
    # (BYOL §3.2; MoCo v3's option); equal to `momentum` (None) keeps it constant (MoCo v2).
    momentum_end: float | None = None
    queue_size: int = 16384  # number of negative keys, thesis §5.2 (MoCo ImageNet: 65,536)
    # Bound the queue by this fraction of the pretraining train images (rounded down to whole
    # global batches, at least one): with a FIFO queue of K keys over N images an image meets
    # its own stale key (from the previous epoch) with chance about K^2 / (2 N^2); None: no bound.
    queue_fraction: float | None = None
    hidden_dim: int = (
        512  # MoCo v2 MLP head: 2 layers, hidden = feature width (Chen et al. 2020 §2)
    )
    output_dim: int = 128  # MoCo §3.3: 128-d keys
    batch_norm: bool = (
        False  # BN in the projection head (MoCo v2 has none; MoCo v3 and the thesis §5.2 add it)
    )
    shuffle_bn_groups: int = (
        2  # BN groups of the global batch (see module doc); a multiple of the devices
    )
    symmetric: bool = False  # MoCo v2 uses one direction (q from view 0, k from view 1)


def info_nce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float
) -> torch.Tensor:
    """InfoNCE with a queue of negatives (MoCo eq. 1), mean over the batch.

    q, k: (N, D) L2-normalised queries and their positive keys; queue: (K, D) L2-normalised
    negatives. Logits (N, 1 + K) = [q·k, q·queue] / temperature, target index 0.
    """
    pos = (q * k).sum(dim=1, keepdim=True)  # (N, 1)
    neg = q @ queue.t()  # (N, K)
    logits = torch.cat([pos, neg], dim=1) / temperature
    target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)


def forward_in_groups(nets: Sequence[nn.Module], x: torch.Tensor, groups: int) -> torch.Tensor:
    """``nets`` applied in turn to x, batch norm normalising each contiguous group of the
    batch with its own statistics.

    In training, the BN running statistics take one update per call, from the mean of the
    groups' statistics (every group starts from the same running values), as batch norm
    over the whole batch takes one: the update is affine in the statistics, so G groups on
    one device and G/W groups on each of W ranks whose running statistics are then averaged
    (``average_running_stats``) hold the same values.
    """

    def run(v: torch.Tensor) -> torch.Tensor:
        for net in nets:
            v = net(v)
        return v

    if groups <= 1:
        return run(x)
    bns = [b for net in nets for b in net.modules() if _tracks_running_stats(b)]
    # Each group updates its own copy of the running values: batch norm's backward checks
    # that the tensors it saw were not changed in place afterwards.
    start = [(b.running_mean, b.running_var, b.num_batches_tracked.clone()) for b in bns]
    updated: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in bns]
    out = []
    for chunk in x.chunk(groups):
        for b, (mean, var, _) in zip(bns, start, strict=True):
            b.running_mean, b.running_var = mean.clone(), var.clone()
        out.append(run(chunk))
        for b, u in zip(bns, updated, strict=True):
            u.append((b.running_mean, b.running_var))
    with torch.no_grad():
        for b, (mean, var, count), u in zip(bns, start, updated, strict=True):
            mean.copy_(torch.stack([m for m, _ in u]).mean(0))
            var.copy_(torch.stack([v for _, v in u]).mean(0))
            b.running_mean, b.running_var = mean, var
            b.num_batches_tracked.copy_(count + 1)
    return torch.cat(out, dim=0)


@torch.no_grad()
def average_running_stats(module: nn.Module) -> None:
    """Under DDP, set every BN running mean and variance in ``module`` to its mean over the
    ranks (one all-reduce); each rank updated them from its own groups."""
    stats = [
        t
        for b in module.modules()
        if isinstance(b, nn.modules.batchnorm._BatchNorm) and b.track_running_stats
        for t in (b.running_mean, b.running_var)
    ]
    if not stats:
        return
    flat = torch.cat([t.flatten() for t in stats])
    torch.distributed.all_reduce(flat)
    flat /= dist.world_size()
    for t, value in zip(stats, flat.split([t.numel() for t in stats]), strict=True):
        t.copy_(value.view_as(t))


def _tracks_running_stats(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.modules.batchnorm._BatchNorm)
        and module.training
        and module.track_running_stats
    )


def groups_per_rank(groups: int, world_size: int) -> int:
    """The BN groups each of ``world_size`` ranks normalises (``groups`` of the global batch)."""
    if groups % world_size:
        raise ConfigError(
            f"method_options.shuffle_bn_groups: {groups} BN groups cannot be shared by "
            f"{world_size} devices; set it to a multiple of {world_size} "
            f"(--set method_options.shuffle_bn_groups={world_size}: one group per device, "
            "as in MoCo's multi-GPU training)"
        )
    return groups // world_size


@torch.no_grad()
def shuffled_forward(
    nets: Sequence[nn.Module], x: torch.Tensor, shuffle_bn_groups: int
) -> torch.Tensor:
    """The key networks ``nets`` applied in turn to this rank's images x (n, ...), the global
    batch shuffled across ranks and split into ``shuffle_bn_groups`` BN groups (MoCo's
    ``_batch_shuffle_ddp``, see the module docstring); outputs in x's order. In eval mode batch
    norm is per image: nothing is shuffled or gathered."""
    if not any(net.training for net in nets):
        return forward_in_groups(nets, x, 1)
    world, n = dist.world_size(), x.shape[0]
    groups = groups_per_rank(shuffle_bn_groups, world)
    x_all = torch.cat(dist.gather(x)) if world > 1 else x  # (W n, ...) the global batch
    perm = torch.randperm(x_all.shape[0], device=x.device)
    if world > 1:
        torch.distributed.broadcast(perm, src=0)  # one shuffle for all ranks
    mine = slice(dist.rank() * n, (dist.rank() + 1) * n)
    k = forward_in_groups(nets, x_all[perm[mine]], groups)
    k_all = torch.cat(dist.gather(k)) if world > 1 else k  # (W n, ...), shuffled order
    return k_all[torch.argsort(perm)][mine]  # back to x's order


@METHODS.register("moco")
class MoCo(SSLMethod):
    Config = MoCoConfig
    sync_batchnorm = False  # per-device BN groups are the point of shuffled BN (module doc)

    def __init__(self, encoder: nn.Module, config: MoCoConfig) -> None:
        super().__init__(encoder, config)
        self.projection_head = MoCoProjectionHead(
            FEATURE_DIM, config.hidden_dim, config.output_dim, batch_norm=config.batch_norm
        )
        self.key_encoder = copy.deepcopy(encoder)
        self.key_head = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.key_encoder)
        deactivate_requires_grad(self.key_head)
        # Buffers, so that checkpoints and resume carry the queue and its write position.
        self.register_buffer(
            "queue", F.normalize(torch.randn(config.queue_size, config.output_dim), dim=1)
        )
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self._pending_keys: torch.Tensor | None = None

    def _query(self, x: torch.Tensor) -> torch.Tensor:
        groups = groups_per_rank(self.config.shuffle_bn_groups, dist.world_size())
        z = forward_in_groups((self.encoder, self.projection_head), x, groups)
        return F.normalize(z, dim=1)

    @torch.no_grad()
    def _key(self, x: torch.Tensor) -> torch.Tensor:
        """Keys of this rank's images x (n, 1, H, W), normalised in shuffled BN groups."""
        k = shuffled_forward((self.key_encoder, self.key_head), x, self.config.shuffle_bn_groups)
        return F.normalize(k, dim=1)

    def _loss_and_keys(self, views):
        x0, x1 = views  # (N, 1, 64, 64) each
        q0, k1 = self._query(x0), self._key(x1)
        loss = info_nce(q0, k1, self.queue.clone(), self.config.temperature)
        keys = k1
        if self.config.symmetric:
            q1, k0 = self._query(x1), self._key(x0)
            loss = 0.5 * (loss + info_nce(q1, k0, self.queue.clone(), self.config.temperature))
            keys = torch.cat([k1, k0])
        return loss, keys

    def compute_loss(self, views):
        loss, _ = self._loss_and_keys(views)
        return loss, {}

    def training_step(self, views):
        loss, keys = self._loss_and_keys(views)
        self._pending_keys = keys.detach()
        return loss, {}

    @classmethod
    def fit_to_data(cls, config: MoCoConfig, *, n_train: int, batch_size: int) -> MoCoConfig:
        """``queue_size`` bounded by ``queue_fraction`` of the ``n_train`` pretraining images."""
        if config.queue_fraction is None:
            return config
        whole = max(1, int(config.queue_fraction * n_train) // batch_size) * batch_size
        return dataclasses.replace(config, queue_size=min(config.queue_size, whole))

    def momentum_at(self, step: int, total_steps: int) -> float:
        """EMA momentum after optimizer step ``step`` (1-based) of ``total_steps``."""
        end = self.config.momentum_end
        if end is None or end == self.config.momentum:
            return self.config.momentum
        return cosine_schedule(step - 1, total_steps, self.config.momentum, end)

    @torch.no_grad()
    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        m = self.momentum_at(step, total_steps)
        update_momentum(self.encoder, self.key_encoder, m=m)
        update_momentum(self.projection_head, self.key_head, m=m)
        if self._pending_keys is not None:
            keys = self._pending_keys
            if dist.world_size() > 1:  # DDP: every rank enqueues all ranks' keys, in rank order
                keys = torch.cat(dist.gather(keys))
            self.enqueue(keys)
            self._pending_keys = None
        if dist.world_size() > 1:
            average_running_stats(self)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write keys (B, D) at the queue pointer, wrapping around the end (FIFO)."""
        size = self.queue.shape[0]
        keys = keys[-size:].to(self.queue.dtype)
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[idx] = keys
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % size)
