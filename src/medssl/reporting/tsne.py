"""t-SNE map of encoder embeddings coloured by class (thesis figure A.2)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medssl.artifacts import write_bytes
from medssl.data.records import CLASSES


def tsne_2d(embeddings: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """embeddings: (N, D) -> (N, 2) scikit-learn t-SNE (perplexity min(30, (N - 1) / 3))."""
    from sklearn.manifold import TSNE

    x = np.asarray(embeddings, dtype=np.float32)
    n = x.shape[0]
    if n < 3:
        return np.zeros((n, 2), dtype=np.float32)
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        x
    )


def plot_tsne(
    embeddings: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike,
    title: str,
    *,
    class_names: Sequence[str] = CLASSES,
    seed: int = 0,
) -> Path:
    """Scatter of the 2-D t-SNE of ``embeddings`` (N, D), one colour per label (N,); PNG, atomic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy = tsne_2d(embeddings, seed=seed)
    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    try:
        for c, name in enumerate(class_names):
            sel = labels == c
            if sel.any():
                ax.scatter(
                    xy[sel, 0], xy[sel, 1], s=8, alpha=0.8, label=f"{name} ({int(sel.sum())})"
                )
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return write_bytes(path, buf.getvalue())
