"""Peak memory of the bench process: resident set (``getrusage``) and CUDA allocations."""

from __future__ import annotations

import resource
import sys

import torch


def _mb(maxrss: int) -> float:
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    return maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def peak_rss_mb() -> float:
    """Largest resident set of this process so far, MB (it never goes down)."""
    return round(_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), 1)


def peak_rss_children_mb() -> float:
    """Largest resident set of a finished child process (e.g. a DataLoader worker), MB."""
    return round(_mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss), 1)


def reset_cuda_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def cuda_peak_mb(device: torch.device) -> float | None:
    """``torch.cuda.max_memory_allocated`` since the last reset, MB (None off CUDA)."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
