"""Synthetic phantoms written in the real on-disk layouts of the public sources.

The image generators (:func:`generate_ultrasound`, :func:`generate_mammogram`) are pure
functions of a ``numpy.random.Generator``: the same seed gives the same pixels. Each source
writes its phantoms beside its reader (``Source.write_phantoms`` in ``data/sources/``);
``write_phantoms(out)`` writes every source under ``out/<name>/`` and returns the folders to
pass as ``--root NAME=DIR``, ``write_source(name, root, counts)`` writes one.
"""

from medssl.data.synth.mammography import Mammogram, generate_mammogram, render_mammogram
from medssl.data.synth.phantoms import (
    Scale,
    check_scale,
    describe_scale,
    phantom_writers,
    source_scale,
    write_phantoms,
    write_source,
)
from medssl.data.synth.ultrasound import generate_ultrasound, render_ultrasound

__all__ = [
    "Mammogram",
    "Scale",
    "check_scale",
    "describe_scale",
    "generate_mammogram",
    "generate_ultrasound",
    "phantom_writers",
    "render_mammogram",
    "render_ultrasound",
    "source_scale",
    "write_phantoms",
    "write_source",
]
