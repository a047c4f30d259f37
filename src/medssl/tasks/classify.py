"""The classification task: normal / benign / malignant from a 1-channel ResNet-18.

:class:`Classification` is the network and its loss in the trainer's protocol (a
:class:`~medssl.models.classifier.Classifier` trained with cross-entropy, ``predict_step`` for
evaluation); :class:`ClassificationTask` is the task: tensors, metrics (``metrics.
classification``), predictions (``predictions_<split>.npz``: ids, patients, sources, y_true,
probs) and figures (ROC/PR, confusion matrix, per-epoch curves). best.pt: the best val MCC.

Batches are dicts ``{"x": (B, 1, H, W) float in [-1, 1], "y": (B,) int64}``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medssl.artifacts import write_bytes
from medssl.data.augment import to_float
from medssl.data.labelled import SplitData
from medssl.data.records import CLASSES
from medssl.metrics.classification import classification_metrics, confusion_matrix
from medssl.models.classifier import Classifier, build_classifier
from medssl.runfiles import (
    CLASSIFICATION_CURVES,
    LOSS_CURVE,
    confusion_figure,
    predictions_file,
    roc_pr_figure,
)
from medssl.tasks.task import TASKS, FinetuneTask


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


@TASKS.register("classification")
class ClassificationTask(FinetuneTask):
    name = "classification"
    monitor = "val_mcc"
    epoch_metrics = ("loss", "accuracy", "mcc", "balanced_accuracy", "f1_macro", "auroc_macro")
    summary_metrics = ("mcc", "balanced_accuracy", "auroc_macro")

    def build(self, init: str, train: SplitData) -> nn.Module:
        weights = None
        if self.cfg.class_weighting:
            counts = np.bincount(train.labels, minlength=len(CLASSES)).astype(np.float64)
            # inverse frequency, n / (K * n_k); an absent class gets weight 0 (it never occurs)
            weights = torch.tensor(
                np.where(counts > 0, counts.sum() / (len(CLASSES) * np.maximum(counts, 1)), 0.0),
                dtype=torch.float32,
            )
        model = build_classifier(init, freeze_encoder=self.cfg.freeze_encoder)
        return Classification(model, weights)

    def tensors(self, split: SplitData, device: torch.device) -> dict[str, torch.Tensor]:
        x = to_float(torch.from_numpy(split.images).to(device))
        return {"x": x, "y": torch.from_numpy(split.labels).to(device)}

    def metrics(self, split, probs, loss, *, distances=True) -> dict[str, float]:
        m = classification_metrics(split.labels, probs, cost_matrix=self.cfg.cost_matrix)
        m["loss"] = loss  # the model's own (unweighted) cross-entropy, same value up to clipping
        return m

    def save_predictions(self, out: Path, split_name: str, split: SplitData, probs) -> None:
        buf = io.BytesIO()
        np.savez_compressed(
            buf, ids=np.array(split.ids), patients=np.array(split.patients),
            sources=np.array(split.sources), y_true=split.labels, probs=probs.astype(np.float32),
        )  # fmt: skip
        write_bytes(out / predictions_file(split_name), buf.getvalue())

    def split_figures(self, out, split_name, split, probs, metrics, seed) -> None:
        from medssl.reporting.confusion import plot_confusion
        from medssl.reporting.roc import plot_roc_pr

        s = split_name
        plot_roc_pr(split.labels, probs, out / roc_pr_figure(s), title=f"{s} split")
        cm = confusion_matrix(split.labels, probs.argmax(1))
        plot_confusion(cm, out / confusion_figure(s), title=f"{s}: MCC {metrics['mcc']:.3f}")

    def history_figures(self, out: Path, history: list[dict[str, Any]]) -> None:
        from medssl.reporting.curves import plot_curves

        plot_curves(
            history, ["train_loss", "val_loss"], out / LOSS_CURVE, "Fine-tuning loss",
            ylabel="cross-entropy",
        )  # fmt: skip
        cols = [
            "train_accuracy",
            "val_accuracy",
            "val_mcc",
            "val_balanced_accuracy",
            "val_auroc_macro",
        ]
        plot_curves(
            history, cols, out / CLASSIFICATION_CURVES, "Validation metrics per epoch",
            ylabel="metric (0-1; MCC -1 to 1)",
        )  # fmt: skip
