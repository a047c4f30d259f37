"""Per-class one-vs-rest ROC and precision-recall curves of one split (thesis appendix B)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from medssl.data.records import CLASSES
from medssl.metrics.classification import auroc_per_class, average_precision_per_class
from medssl.reporting.savefig import save_figure


def plot_roc_pr(
    y_true: np.ndarray,
    probs: np.ndarray,
    path: str | os.PathLike,
    *,
    title: str = "",
    class_names: Sequence[str] = CLASSES,
) -> Path:
    """Two panels: ROC (with AUROC per class) and PR (with AP per class).

    y_true: int (N,); probs: (N, K) probabilities. A class without positives (or negatives) in
    the split has no curve and is labelled "undefined" with the reason.
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    auc = auroc_per_class(y_true, probs)
    ap = average_precision_per_class(y_true, probs)
    fig = Figure(figsize=(10, 4.5))
    ax_roc, ax_pr = fig.subplots(1, 2)
    for k, name in enumerate(class_names):
        pos = y_true == k
        if np.isfinite(auc[k]):
            fpr, tpr, _ = roc_curve(pos, probs[:, k])
            ax_roc.plot(fpr, tpr, label=f"{name} (AUROC {auc[k]:.3f})")
        else:
            ax_roc.plot([], [], label=f"{name} (undefined: no positive or no negative image)")
        if np.isfinite(ap[k]):
            prec, rec, _ = precision_recall_curve(pos, probs[:, k])
            ax_pr.step(rec, prec, where="post", label=f"{name} (AP {ap[k]:.3f})")
        else:
            ax_pr.plot([], [], label=f"{name} (undefined: no image of the class)")
    ax_roc.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax_roc.set(
        xlabel="1 - specificity",
        ylabel="sensitivity",
        title="ROC (one vs rest)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax_pr.set(
        xlabel="recall",
        ylabel="precision",
        title="Precision-recall (one vs rest)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    for ax in (ax_roc, ax_pr):
        ax.legend(loc="lower right" if ax is ax_roc else "lower left", fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
