"""Synthetic phantoms written in the real on-disk layouts of the public sources.

``write_phantoms(out)`` writes every source under ``out/<name>/`` and returns the folders to
pass as ``--root NAME=DIR``; ``write_source(name, root, counts)`` writes one. The generators
(:func:`generate_ultrasound`, :func:`generate_mammogram`) are pure functions of a
``numpy.random.Generator``: the same seed gives byte-identical files.
"""

from medssl.data.synth.layouts import (
    DEFAULT_COUNTS,
    LAYOUTS,
    REAL_COUNTS,
    SOURCE_CLASSES,
    write_phantoms,
    write_source,
)
from medssl.data.synth.mammography import Mammogram, generate_mammogram, render_mammogram
from medssl.data.synth.ultrasound import generate_ultrasound, render_ultrasound

__all__ = [
    "DEFAULT_COUNTS",
    "LAYOUTS",
    "REAL_COUNTS",
    "SOURCE_CLASSES",
    "Mammogram",
    "generate_mammogram",
    "generate_ultrasound",
    "render_mammogram",
    "render_ultrasound",
    "write_phantoms",
    "write_source",
]
