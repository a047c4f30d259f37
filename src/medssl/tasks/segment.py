"""The segmentation task: a U-Net trained with Dice + BCE, in the trainer's protocol plus
``predict_step`` for evaluation.

Batches are dicts ``{"x": (B, 1, H, W) float in [-1, 1], "mask": (B, 1, H, W) float {0, 1}}``.
Training logs are the batch's pixel counts ``tp, fp, fn, tn`` at threshold 0.5: the trainer
averages them over the epoch's batches, and their ratios are exactly the pooled (micro) train
Dice, IoU, pixel accuracy, precision and recall (computed at epoch end by the fine-tuning run).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from medssl.metrics.segmentation import THRESHOLD
from medssl.models.unet import DiceBCELoss


class Segmentation(nn.Module):
    """model: x (B, 1, H, W) -> logits (B, 1, H, W)."""

    def __init__(self, model: nn.Module, *, freeze_encoder: bool = False) -> None:
        super().__init__()
        self.model = model
        self.criterion = DiceBCELoss()
        self.freeze_encoder = freeze_encoder

    def train(self, mode: bool = True) -> Segmentation:
        super().train(mode)
        if self.freeze_encoder:  # keep the pretrained BatchNorm statistics of a frozen encoder
            self.model.encoder.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self(batch["x"]).float()
        loss = self.criterion(logits, batch["mask"])
        return loss, pixel_counts(logits.detach(), batch["mask"])

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        loss, logs = self.training_step(batch)
        return {"loss": loss.detach(), **logs}

    @torch.no_grad()
    def predict_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """{"probs": (B, H, W) sigmoid probabilities, "loss_sum": batch loss x B}."""
        logits = self(batch["x"]).float()
        out = {"probs": logits.sigmoid()[:, 0]}
        if "mask" in batch:
            out["loss_sum"] = self.criterion(logits, batch["mask"]) * logits.shape[0]
        return out

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Nothing to update after a step."""


def pixel_counts(logits: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """Pixel counts of a batch at probability ``THRESHOLD``: {"tp","fp","fn","tn"} 0-d float.

    logits: (B, 1, H, W); mask: (B, 1, H, W) {0, 1}.
    """
    pred = logits.sigmoid() >= THRESHOLD
    true = mask >= 0.5
    return {
        "tp": (pred & true).sum().float(),
        "fp": (pred & ~true).sum().float(),
        "fn": (~pred & true).sum().float(),
        "tn": (~pred & ~true).sum().float(),
    }
