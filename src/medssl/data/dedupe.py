"""Duplicate images across sources: exact (content hash) and near (thumbnail correlation).

Public breast datasets re-distribute each other's images (re-encoded, resized, recoloured),
so the builder keeps a :class:`DuplicateIndex` of every accepted image and refuses an image
whose twin already sits in the other role (pretraining vs finetuning), or repeats one already
in the same role. Every such case is reported in ``database.json`` and by ``describe``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter

from medssl.data.preprocess import resize_image, to_uint8

THUMB = 64  # near-duplicates are compared on 64 × 64 thumbnails (the finetuning size)
NEAR_MIN_CORR = 0.9  # correlation of high-passed thumbnails at or above which two images are twins
# Measured on phantoms: distinct images correlate below 0.6; resized, re-encoded (JPEG q70)
# or contrast-changed copies above 0.999. A coarse hash (dHash) fails on mammograms, whose
# silhouettes on black look alike at 16 px.


def content_hash(image: np.ndarray) -> str:
    """sha1 of the decoded grey image quantised to uint8 (format-independent). image: (H, W) in [0, 1]."""
    q = to_uint8(image)
    h = hashlib.sha1(str(q.shape).encode())
    h.update(q.tobytes())
    return h.hexdigest()


def fingerprint(image: np.ndarray) -> np.ndarray:
    """float32 (THUMB², ) unit vector: the 64 × 64 thumbnail minus its blur (texture, not
    silhouette), zero-mean; the dot product of two fingerprints is their correlation."""
    t = resize_image(image, THUMB)
    hp = (t - gaussian_filter(t, 2.0)).ravel()
    hp -= hp.mean()
    norm = float(np.linalg.norm(hp))
    return (hp / norm if norm > 0 else hp).astype(np.float32)


@dataclass
class Entry:
    key: str  # "source:file"
    role: str
    sha1: str
    fingerprint: np.ndarray


@dataclass
class DuplicateIndex:
    entries: list[Entry] = field(default_factory=list)
    _by_sha: dict[str, Entry] = field(default_factory=dict)
    _matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    def find(self, sha1: str, fp: np.ndarray) -> tuple[Entry, str] | None:
        """The accepted image this one duplicates, and "exact" or "near"; None when unique."""
        if sha1 in self._by_sha:
            return self._by_sha[sha1], "exact"
        if self.entries:
            corr = self._matrix[: len(self.entries)] @ fp  # (n,)
            j = int(np.argmax(corr))
            if corr[j] >= NEAR_MIN_CORR:
                return self.entries[j], "near"
        return None

    def add(self, key: str, role: str, sha1: str, fp: np.ndarray) -> None:
        entry = Entry(key, role, sha1, fp)
        n = len(self.entries)
        if n == len(self._matrix):  # grow the fingerprint matrix geometrically
            grown = np.zeros((max(64, 2 * n), fp.size), dtype=np.float32)
            if n:
                grown[:n] = self._matrix[:n]
            self._matrix = grown
        self._matrix[n] = fp
        self.entries.append(entry)
        self._by_sha.setdefault(sha1, entry)
