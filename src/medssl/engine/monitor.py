"""Periodic health checks of an encoder: the health read, a collapse guard, alignment and
uniformity.

Health read (``engine.health_read``): leave-one-patient-out kNN and out-of-fold linear
balanced accuracies on frozen features of the labelled finetuning train and validation
images, each with its standard error, compared paired with the run's own random-init
encoder. Features are read in eval mode after the batch-norm statistics are re-estimated on
the read's images with the current weights ("precise BN", Wu & Johnson 2021, "Rethinking
'Batch' in BatchNorm" §3): the EMA running statistics lag weights that change quickly (early
in a run they describe an older network, and at random init they are the placeholders 0 / 1),
which made a trained encoder read worse than a random one. Every encoder, random or trained,
is read the same way.

Collapse guard (Siamese collapse, Chen & He 2021 §4.1): the per-dimension standard deviation
of L2-normalised embeddings is about 1/sqrt(D) for a spread-out representation and 0 when
every image maps to the same point (lightly's ``std_of_l2_normalized``); reported multiplied
by sqrt(D), so about 1 is healthy and 0 is collapsed, whatever D is.

Alignment and uniformity (Wang & Isola 2020, "Understanding Contrastive Representation
Learning through Alignment and Uniformity on the Hypersphere", §4.1): on a fixed set of view
pairs, how close the two views of an image land (alignment, 0 = identical) and how evenly all
views spread over the sphere (uniformity, 0 = one point). The pairs are read like the health
read's images: eval mode, BN statistics re-estimated on those images (on the guard's images
when there are none), in the same pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from lightly.utils.debug import std_of_l2_normalized
from torch import nn

from medssl.data.augment import to_float
from medssl.engine.batchnorm import recompute_bn
from medssl.engine.health_read import HealthRead, read_features
from medssl.errors import TrainingError


@torch.no_grad()
def embed_images(
    encoder: nn.Module,
    images: torch.Tensor,
    *,
    size: int = 64,
    batch_size: int = 256,
    batch_stats: bool = False,
) -> torch.Tensor:
    """uint8 (N, H, W) -> float32 features (N, D) of ``encoder`` (its mode is restored).

    Images of another side are resized (antialiased) to the training view size ``size``.
    ``batch_stats=False``: eval mode (BN running statistics), the kNN-monitor convention.
    ``batch_stats=True``: BN normalises with each chunk's own statistics, as the loss sees
    them; running statistics are saved and restored, so the call has no side effect.
    """
    was_training = encoder.training
    saved = {k: v.clone() for k, v in encoder.state_dict().items()} if batch_stats else None
    encoder.train(batch_stats)
    out = []
    try:
        for chunk in images.split(batch_size):
            out.append(encoder(_input(chunk, size)).float())
    finally:
        encoder.train(was_training)
        if saved is not None:
            encoder.load_state_dict(saved)
    return torch.cat(out) if out else torch.empty(0)


def _input(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, H, W) -> float (N, 1, size, size) in [-1, 1], resized (antialiased) if needed."""
    x = to_float(images)
    if x.shape[-1] != size:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    return x


@contextmanager
def precise_bn(
    encoder: nn.Module, images: torch.Tensor, *, size: int = 64, batch_size: int = 256
) -> Iterator[nn.Module]:
    """Within the block, ``encoder`` is in eval mode and its BN running statistics are the
    population statistics of ``images`` (uint8 (N, H, W)) under the current weights; weights,
    statistics and mode are restored on exit. Fewer than 2 images: the statistics are kept."""
    was_training = encoder.training
    saved = {k: v.clone() for k, v in encoder.state_dict().items()}
    try:
        recompute_bn(encoder, [_input(chunk, size) for chunk in images.split(batch_size)])
        encoder.eval()
        yield encoder
    finally:
        encoder.load_state_dict(saved)
        encoder.train(was_training)


def collapse_score(z: torch.Tensor) -> float:
    """z: (N, D) embeddings -> mean per-dimension std of L2-normalised z, times sqrt(D)
    (lightly's ``std_of_l2_normalized`` x sqrt(D)).

    About 1 for spread-out embeddings, 0 for a collapsed (constant) encoder.
    """
    return float(std_of_l2_normalized(z.float()) * math.sqrt(z.shape[1]))


def alignment(z0: torch.Tensor, z1: torch.Tensor, alpha: float = 2.0) -> float:
    """E ||f(x) - f(x')||^alpha over positive pairs (Wang & Isola 2020 §4.1, alpha = 2).

    z0, z1: (N, D) features of the two views of N images, any norm (L2-normalised here).
    0 when both views of every image coincide; at most 2^alpha (antipodal views).
    """
    d = F.normalize(z0.float(), dim=1) - F.normalize(z1.float(), dim=1)  # (N, D)
    return float(d.norm(dim=1).pow(alpha).mean())


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """log E exp(-t ||f(x) - f(y)||^2) over the N(N-1)/2 distinct pairs of rows of z (Wang &
    Isola 2020 §4.1, t = 2, in their reference code's ``pdist`` form).

    z: (N, D), N >= 2, any norm (L2-normalised here). 0 when every row is the same point;
    lower is more uniform (about -4 for t = 2 when the rows are spread over a
    high-dimensional sphere, where squared distances concentrate at 2).
    """
    sq = torch.pdist(F.normalize(z.float(), dim=1), p=2).pow(2)  # (N(N-1)/2,)
    return float(sq.mul(-t).exp().mean().log())


def check_collapse(score: float, threshold: float, *, epoch: int) -> None:
    if not math.isfinite(score) or score < threshold:
        raise TrainingError(
            f"representation collapsed at epoch {epoch}: the per-dimension std of L2-normalised "
            f"embeddings is {score:.4g} (x sqrt(D); about 1 when healthy), below collapse_threshold "
            f"{threshold}. The encoder maps all images to nearly the same point. Lower the learning "
            "rate (--set optimizer.lr=...), use a larger batch or another method; metrics.csv and "
            "checkpoint.pt hold the run up to this epoch"
        )


@dataclass
class HealthMonitor:
    """The health read of an encoder (``engine.health_read``) and its companions, over images
    already on the device.

    images: uint8 (N, F, F) labelled images the read may use (finetuning train and
    validation, never test); labels (N,) int; groups (N,) patient groups (an image's own group
    never votes for it in the kNN reading, and the linear reading's folds keep groups whole).
    Features are read in eval mode after the BN statistics are re-estimated on ``images``.
    ``collapse_images`` (uint8, default ``images``) feed the collapse guard; ``pairs``: two
    float views (P, 1, S, S) in [-1, 1] of the same P images (P >= 2), fixed for the run, for
    alignment and uniformity; None leaves them out.
    """

    images: torch.Tensor
    labels: np.ndarray
    groups: np.ndarray
    k: int = 20
    temperature: float = 0.07
    probe_c: float = 0.1
    probe_folds: int = 5
    seed: int = 0
    collapse_images: torch.Tensor | None = None
    size: int = 64  # images are embedded at the training view size
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, encoder: nn.Module) -> tuple[dict[str, float], HealthRead | None]:
        """(logs, read): ``knn_bacc``, ``linear_bacc`` and their ``_se``, ``collapse_std``,
        ``alignment``, ``uniformity`` (each only where its inputs exist), and the read with
        every image's correctness (None without labelled images)."""
        logs: dict[str, float] = {}
        read = None
        guard = self.collapse_images if self.collapse_images is not None else self.images
        if len(self.images) > 0 or self.pairs is not None:
            with precise_bn(
                encoder, self.images if len(self.images) > 1 else guard, size=self.size
            ):
                if len(self.images) > 0:
                    features = embed_images(encoder, self.images, size=self.size)
                    read = read_features(
                        features.cpu(), self.labels, self.groups, k=self.k,
                        temperature=self.temperature, c=self.probe_c, folds=self.probe_folds,
                        seed=self.seed,
                    )  # fmt: skip
                    for name, r in (("knn", read.knn), ("linear", read.linear)):
                        logs[f"{name}_bacc"], logs[f"{name}_bacc_se"] = r.bacc, r.se
                if self.pairs is not None:
                    z0, z1 = (_embed_views(encoder, v) for v in self.pairs)
                    logs["alignment"] = alignment(z0, z1)
                    logs["uniformity"] = 0.5 * (uniformity(z0) + uniformity(z1))
        # The guard judges the representation the loss sees (batch statistics): early in a
        # run, stale BN running statistics can make eval-mode features look collapsed.
        if len(guard) > 1:
            logs["collapse_std"] = collapse_score(
                embed_images(encoder, guard, size=self.size, batch_stats=True)
            )
        return logs, read


@torch.no_grad()
def _embed_views(encoder: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Float views (N, 1, S, S) -> float32 features (N, D), in the encoder's current mode."""
    return torch.cat([encoder(chunk).float() for chunk in x.split(batch_size)])
