"""The seeded random streams phantoms are drawn from, one per source and item.

Every byte of a phantom tree follows from its seed: each source draws from its own stream
``(seed, crc32(name), item)``, so adding a source or changing another source's counts leaves
a source's files unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np

from medssl.data.records import CLASSES


class Stream:
    """The seeded random stream of one source: ``stream(i)`` is item ``i``'s own generator."""

    def __init__(self, seed: int, name: str) -> None:
        self.key = (int(seed), zlib.crc32(name.encode()))

    def __call__(self, *item: int) -> np.random.Generator:
        return np.random.default_rng([*self.key, *item])


def labels_in_order(counts: Mapping[str, int]) -> list[str]:
    """Class of each image, in CLASSES order (deterministic)."""
    return [c for c in CLASSES for _ in range(counts.get(c, 0))]
