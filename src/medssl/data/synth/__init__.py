"""Synthetic images and the file formats of the public sources; no source's layout.

The image generators (:func:`generate_ultrasound`, :func:`generate_mammogram`) are pure
functions of a ``numpy.random.Generator``: the same seed gives the same pixels;
:mod:`~medssl.data.synth.files` writes PNG, DICOM, XLSX and text files and
:mod:`~medssl.data.synth.stream` gives each item its seeded generator. The sources' phantom
writers (``Source.write_phantoms`` in ``data/sources/``) lay these out as each publisher does;
:mod:`medssl.data.phantoms` writes whole trees of them.
"""

from medssl.data.synth.mammography import Mammogram, generate_mammogram, render_mammogram
from medssl.data.synth.ultrasound import generate_ultrasound, render_ultrasound

__all__ = [
    "Mammogram",
    "generate_mammogram",
    "generate_ultrasound",
    "render_mammogram",
    "render_ultrasound",
]
