"""Duplicate images across sources: exact (content hash) and near (difference hash).

Public breast datasets re-distribute each other's images (re-encoded, resized, recoloured),
so the builder keeps a :class:`DuplicateIndex` of every accepted image and refuses an image
whose twin already sits in the other role (pretraining vs finetuning), or repeats one already
in the same role. Every such case is reported in ``database.json`` and by ``describe``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from medssl.data.preprocess import to_uint8

DHASH_SIZE = 16  # 16 × 16 = 256-bit difference hash of the whole image
NEAR_MAX_BITS = 12  # Hamming distance (of 256) at or below which two images are near-duplicates


def content_hash(image: np.ndarray) -> str:
    """sha1 of the decoded grey image quantised to uint8 (format-independent). image: (H, W) in [0, 1]."""
    q = to_uint8(image)
    h = hashlib.sha1(str(q.shape).encode())
    h.update(q.tobytes())
    return h.hexdigest()


def difference_hash(image: np.ndarray) -> np.ndarray:
    """bool (256,) dHash: sign of horizontal gradients of a 16 × 17 thumbnail; robust to scale and contrast."""
    from PIL import Image

    pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F")
    thumb = np.asarray(pil.resize((DHASH_SIZE + 1, DHASH_SIZE), Image.Resampling.BILINEAR))
    return (thumb[:, 1:] > thumb[:, :-1]).ravel()


@dataclass
class Entry:
    key: str  # "source:file"
    role: str
    sha1: str
    dhash: np.ndarray


@dataclass
class DuplicateIndex:
    entries: list[Entry] = field(default_factory=list)
    _by_sha: dict[str, Entry] = field(default_factory=dict)
    _hashes: list[np.ndarray] = field(default_factory=list)

    def find(self, sha1: str, dhash: np.ndarray) -> tuple[Entry, str] | None:
        """The accepted image this one duplicates, and "exact" or "near"; None when unique."""
        if sha1 in self._by_sha:
            return self._by_sha[sha1], "exact"
        if self._hashes:
            dist = np.count_nonzero(np.stack(self._hashes) != dhash[None, :], axis=1)
            j = int(np.argmin(dist))
            if dist[j] <= NEAR_MAX_BITS:
                return self.entries[j], "near"
        return None

    def add(self, key: str, role: str, sha1: str, dhash: np.ndarray) -> None:
        entry = Entry(key, role, sha1, dhash)
        self.entries.append(entry)
        self._by_sha.setdefault(sha1, entry)
        self._hashes.append(dhash)
