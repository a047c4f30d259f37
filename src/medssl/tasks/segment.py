"""The segmentation task: binary lesion masks from a U-Net on the 1-channel ResNet-18.

:class:`Segmentation` is the network and its loss in the trainer's protocol (smp's U-Net,
Dice + BCE, ``predict_step`` for evaluation); :class:`SegmentationTask` is the task: tensors,
metrics (``metrics.segmentation``: per image over lesion images, the miss policy, distances in
64-px, original pixels and mm), predictions (``predictions_<split>.npz`` and
``per_image_<split>.csv``) and figures (example panels, per-epoch curves). best.pt: the best
validation Dice. Only images with a mask take part (``needs_masks``).

Batches are dicts ``{"x": (B, 1, H, W) float in [-1, 1], "mask": (B, 1, H, W) float {0, 1}}``.
Training logs are the batch's pixel counts ``tp, fp, fn, tn`` at threshold 0.5: the trainer
averages them over the epoch's batches, and their ratios are exactly the pooled (micro) train
Dice, IoU, pixel accuracy, precision and recall (computed at epoch end by the fine-tuning run).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from medssl.artifacts import write_bytes, write_csv
from medssl.data.augment import to_float
from medssl.data.labelled import SplitData
from medssl.data.records import CLASSES
from medssl.metrics.segmentation import (
    PER_IMAGE_METRICS,
    SCALED_DISTANCES,
    THRESHOLD,
    aggregate,
    overlap_from_counts,
    per_image_metrics,
    scale_distances,
)
from medssl.models.unet import DiceBCELoss, build_unet
from medssl.runfiles import (
    LOSS_CURVE,
    SEGMENTATION_CURVES,
    examples_figure,
    per_image_file,
    predictions_file,
)
from medssl.tasks.task import TASKS, FinetuneTask


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


@TASKS.register("segmentation")
class SegmentationTask(FinetuneTask):
    name = "segmentation"
    monitor = "val_dice"
    needs_masks = True
    epoch_metrics = (
        "loss",
        *(m for m in PER_IMAGE_METRICS if not m.startswith("hd")),
        *(f"{m}_pooled" for m in ("dice", "iou", "pixel_accuracy", "precision", "recall")),
    )
    summary_metrics = ("dice", "hd95", "missed_lesions")

    def build(self, init: str, train: SplitData) -> nn.Module:
        frozen = self.cfg.freeze_encoder
        return Segmentation(build_unet(init, freeze_encoder=frozen), freeze_encoder=frozen)

    def tensors(self, split: SplitData, device: torch.device) -> dict[str, torch.Tensor]:
        x = to_float(torch.from_numpy(split.images).to(device))
        return {"x": x, "mask": torch.from_numpy(split.masks).to(device).unsqueeze(1).float()}

    def per_image(self, split: SplitData, probs: np.ndarray, *, distances: bool = True) -> dict:
        """Per-image metrics, distances also in original pixels and mm where known."""
        cfg = self.cfg
        pi = per_image_metrics(
            split.masks, probs, cfg.threshold, distances=distances, miss=cfg.miss_policy
        )
        if distances and len(split.orig_px) == len(split):
            pi.update(scale_distances(pi, split.orig_px, split.mm))
        return pi

    def metrics(self, split, probs, loss, *, distances=True) -> dict[str, float]:
        m = aggregate(self.per_image(split, probs, distances=distances))
        m["loss"] = loss
        return m

    def epoch_logs(self, val: dict[str, float], row: dict[str, Any]) -> dict[str, float]:
        logs = super().epoch_logs(val, row)
        # exact pooled train metrics from the epoch's mean pixel counts (the training logs)
        counts = [row.get(f"train_{k}", float("nan")) for k in ("tp", "fp", "fn", "tn")]
        logs.update(
            {f"train_{k}_pooled": float(v) for k, v in overlap_from_counts(*counts).items()}
        )
        return logs

    def save_predictions(self, out: Path, split_name: str, split: SplitData, probs) -> None:
        buf = io.BytesIO()
        np.savez_compressed(
            buf, ids=np.array(split.ids), patients=np.array(split.patients),
            sources=np.array(split.sources), labels=split.labels,
            masks_true=split.masks.astype(np.uint8), probs=probs.astype(np.float16),
        )  # fmt: skip
        write_bytes(out / predictions_file(split_name), buf.getvalue())
        pi = self.per_image(split, probs)
        distances = [k for k in SCALED_DISTANCES if k in pi]
        rows = [
            {
                "id": split.ids[i], "patient": split.patients[i], "source": split.sources[i],
                "label": CLASSES[int(split.labels[i])], "lesion": int(pi["lesion"][i]),
                "missed": int(pi["missed"][i]),
                **{k: float(pi[k][i]) for k in (*PER_IMAGE_METRICS, *distances)},
                **{k: int(pi[k][i]) for k in ("tp", "fp", "fn", "tn", "pred_area")},
            }
            for i in range(len(split))
        ]  # fmt: skip
        cols = ["id", "patient", "source", "label", "lesion", "missed", *PER_IMAGE_METRICS]
        cols += [*distances, "tp", "fp", "fn", "tn", "pred_area"]
        write_csv(out / per_image_file(split_name), rows, cols)

    def split_figures(self, out, split_name, split, probs, metrics, seed) -> None:
        if split_name != "test":  # example panels for the test split only (thesis appendix C)
            return
        from medssl.reporting.overlays import pick_examples, plot_examples

        cfg = self.cfg
        pred = probs >= cfg.threshold
        pi = per_image_metrics(split.masks, probs, cfg.threshold, distances=False)
        # One panel, ranked by Dice: per image IoU = Dice / (2 - Dice), a monotone function,
        # so the thesis's second panel "by IoU" shows the same images in the same groups.
        scores = np.where(pi["lesion"], pi["dice"], np.nan)  # lesion images only
        picks = pick_examples(scores, cfg.examples_per_group, np.random.default_rng(seed))
        plot_examples(
            split.images, split.masks, pred, scores, picks,
            out / examples_figure(split_name, "dice"), score_name="Dice", ids=split.ids,
            title=f"{split_name} split: examples by Dice (IoU = Dice / (2 - Dice), the same "
            "order; TP green, FP red, FN blue)",
        )  # fmt: skip

    def history_figures(self, out: Path, history: list[dict[str, Any]]) -> None:
        from medssl.reporting.curves import plot_curves
        from medssl.reporting.seg_curves import plot_segmentation_curves

        plot_curves(
            history, ["train_loss", "val_loss"], out / LOSS_CURVE, "Fine-tuning loss",
            ylabel="Dice + BCE loss",
        )  # fmt: skip
        plot_segmentation_curves(history, out / SEGMENTATION_CURVES, title="Segmentation per epoch")
