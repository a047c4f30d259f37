"""The classification task: a :class:`~medssl.models.classifier.Classifier` trained with
cross-entropy, in the trainer's protocol (``training_step`` / ``validation_step`` /
``after_optimizer_step``) plus ``predict_step`` for evaluation.

Batches are dicts ``{"x": (B, 1, H, W) float in [-1, 1], "y": (B,) int64}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medssl.models.classifier import Classifier


class Classification(nn.Module):
    """model: x (B, 1, H, W) -> logits (B, K). ``class_weights`` (K,) weighs the cross-entropy
    (off, i.e. None, by default)."""

    def __init__(self, model: Classifier, class_weights: Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """Mean cross-entropy of logits (B, K) against labels (B,)."""
        return F.cross_entropy(logits.float(), y, weight=self.class_weights)

    def training_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self(batch["x"])
        loss = self.loss(logits, batch["y"])
        acc = (logits.argmax(1) == batch["y"]).float().mean()
        return loss, {"accuracy": acc.detach()}

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        loss, logs = self.training_step(batch)
        return {"loss": loss.detach(), **logs}

    @torch.no_grad()
    def predict_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """{"probs": (B, K) softmax probabilities, "loss_sum": summed unweighted CE}."""
        logits = self(batch["x"]).float()
        out = {"probs": logits.softmax(1)}
        if "y" in batch:
            out["loss_sum"] = F.cross_entropy(logits, batch["y"], reduction="sum")
        return out

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Nothing to update after a step (no momentum encoder)."""
