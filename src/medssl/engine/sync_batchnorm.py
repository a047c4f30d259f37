"""Batch norm over the global batch under DDP, on the CPU as on GPUs.

On one device batch norm normalises with the statistics of the whole batch; under DDP each
rank holds 1/N of it, and per-rank statistics would make the model compute something else
on N devices than on one. SimCLR aggregates the BN mean and variance over all devices
("global BN", Chen et al. 2020 §2.2). ``torch.nn.SyncBatchNorm`` does this on GPUs, but
torch 2.14 refuses CPU tensors ("SyncBatchNorm expected input tensor to be on GPU or XPU")
(and DDP refuses a CPU model holding one), and Lightning Fabric 2.6 has no
``sync_batchnorm`` option (Lightning's ``Trainer`` has). So ``synchronised_batchnorm`` uses
torch's layer on GPUs and ``CPUSyncBatchNorm`` on the CPU (gloo), which computes the same
statistics by hand: the per-channel sums of every rank are gathered with lightly's
autograd-aware ``dist.gather``, whose backward sums every rank's gradient. A plain
``torch.distributed.all_reduce`` has no backward: each rank would see only its own share of
the gradient through the statistics (the bug of lightly issues #1920 and #1977).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from lightly.utils import dist
from torch import nn


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the samples of all ranks, for CPU tensors (gloo backend).

    x: (N, C, *) as ``torch.nn.SyncBatchNorm`` takes. Training mode under
    ``torch.distributed``: mean and biased variance over the samples of all ranks (two
    passes, as the one-device kernel), running statistics updated with the unbiased
    variance, as ``nn.BatchNorm*d`` does on the whole batch. Elsewhere (eval mode, no process
    group) it is plain batch norm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and torch.distributed.is_initialized():
            self._check_input_dim(x)
            return self._global_batch_norm(x)
        return super().forward(x)

    def _global_batch_norm(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.dim())]  # all but the channel axis
        shape = [1, -1] + [1] * (x.dim() - 2)  # per-channel values broadcast over x
        xf = x.float()
        count = xf.new_tensor([x.numel() / x.shape[1]])
        total = torch.stack(dist.gather(torch.cat([xf.sum(dims), count]))).sum(0)  # (C + 1,)
        n = float(total[-1].detach())
        if n < 2:
            raise ValueError(
                f"batch norm needs more than 1 value per channel in training, got {n:.0f}"
            )
        mean = total[:-1] / n  # (C,)
        centred = xf - mean.view(shape)
        var = torch.stack(dist.gather((centred * centred).sum(dims))).sum(0) / n  # (C,) biased
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None:
            y = y * self.weight.view(shape)
        if self.bias is not None:
            y = y + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (
                    1.0 / float(self.num_batches_tracked)
                    if self.momentum is None
                    else self.momentum
                )
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(var * (n / (n - 1)), alpha=m)
        return y.to(x.dtype)


@contextmanager
def synchronised_batchnorm(module: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """Within the block, every ``nn.BatchNorm*d`` inside ``module`` is replaced by a
    synchronised one for ``device`` (``torch.nn.SyncBatchNorm`` on GPUs, ``CPUSyncBatchNorm``
    on the CPU) holding the same parameters and buffers, as
    ``nn.SyncBatchNorm.convert_sync_batchnorm`` does; on exit the original layers are put
    back, holding the values trained in between, so code that runs on one rank afterwards
    (t-SNE, fine-tuning) meets plain batch norm and no collective."""
    layer = CPUSyncBatchNorm if device.type == "cpu" else nn.SyncBatchNorm
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                child, (nn.SyncBatchNorm, CPUSyncBatchNorm)
            ):
                sync = layer(
                    child.num_features,
                    child.eps,
                    child.momentum,
                    child.affine,
                    child.track_running_stats,
                    bias=child.bias is not None,
                )
                _share_state(child, sync)
                setattr(parent, name, sync)
                swapped.append((parent, name, child))
    try:
        yield module
    finally:
        for parent, name, original in reversed(swapped):
            _share_state(getattr(parent, name), original)
            setattr(parent, name, original)


def _share_state(src: nn.Module, dst: nn.Module) -> None:
    """Point ``dst``'s parameters, buffers and mode at ``src``'s (the same tensors, not copies)."""
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        setattr(dst, name, getattr(src, name))
    dst.train(src.training)
