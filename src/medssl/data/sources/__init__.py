"""Public-source readers: one file per source, each registered in :data:`SOURCES`.

A reader turns the folder a user downloaded (exactly as its publisher distributes it, see
``docs/datasets.md``) into :class:`~medssl.data.records.Record` objects. Beside its reader, a source writes its
synthetic phantoms in the same layout (:meth:`Source.write_phantoms`), so the tests read
every source as real data would be read. Adding a source is one new file in this package
that subclasses :class:`Source` and registers itself (``docs/architecture.md``, "Add a
source").
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from medssl.config import from_dict
from medssl.data.records import CLASSES, Record, Skipped
from medssl.data.synth.stream import Stream
from medssl.errors import ConfigError, DataError
from medssl.registry import Registry

SOURCES: Registry[type[Source]] = Registry("source")


@dataclass(frozen=True)
class NoOptions:
    """The options of a source that has none."""


class Source(ABC):
    """Base reader. ``lenient=True`` skips bad items (recorded in ``self.skipped``) instead of
    raising. ``self.opts`` is its ``Options``: the reader options given, over the registered
    preset's (``preset``), over the dataclass's defaults."""

    modality: ClassVar[str]  # "us" or "mg"
    # A frozen dataclass of the reader's options, each with its default (the SSL methods'
    # ``Config``): typed, and unknown options are an error.
    Options: ClassVar[type] = NoOptions
    preset: ClassVar[dict[str, Any]] = {}  # option values of a preset (register_source)
    published_classes: ClassVar[tuple[str, ...]] = CLASSES  # the classes its images carry
    root_may_be_file: ClassVar[bool] = False  # the root may be a file (a CSV), not a folder

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(vars(cls).get("options"), dict):
            raise TypeError(
                f"{cls.__name__}: declare reader options as `Options`, a frozen dataclass of "
                "the options and their defaults, not as an `options` dict"
            )

    def __init__(self, root: str | Path, *, lenient: bool = False, **options: Any) -> None:
        self.root = Path(root)
        if not (self.root.is_dir() or (self.root_may_be_file and self.root.is_file())):
            what = "folder or file" if self.root_may_be_file else "folder"
            raise DataError(f"source {what} does not exist or is not a {what}", file=str(self.root))
        self.opts: Any = self.options({**self.preset, **options})
        self.lenient = lenient
        self.skipped: list[Skipped] = []

    @property
    def name(self) -> str:
        return getattr(self, "registry_name", type(self).__name__.lower())

    @classmethod
    def options(cls, values: dict[str, Any] | None = None) -> Any:
        """``Options`` with ``values`` (default: the preset's) over its defaults; a ConfigError
        naming the source for an unknown option or a value of the wrong type."""
        values = cls.preset if values is None else values
        name = getattr(cls, "registry_name", cls.__name__.lower())
        valid = sorted(f.name for f in fields(cls.Options))
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ConfigError(f"{name}: unknown option(s) {unknown}; valid: {valid}")
        return from_dict(cls.Options, values, where=f"{name} options")

    def problem(self, err: DataError) -> None:
        """Raise ``err``, or record it and go on when the reader is lenient."""
        if not self.lenient:
            raise err
        self.skipped.append(Skipped(self.name, err.file or "", err.reason))

    def locate(self, is_top: Callable[[Path], bool], expected: str) -> Path:
        """The published top folder: ``self.root`` itself, or its one child folder that is one.

        ``is_top(folder)`` says whether a folder looks like the source's top folder;
        ``expected`` describes that folder for the error message.
        """
        if is_top(self.root):
            return self.root
        children = [p for p in sorted(self.root.iterdir()) if p.is_dir() and is_top(p)]
        if len(children) == 1:
            return children[0]
        found = "several candidate folders" if children else "nothing of the kind"
        raise DataError(
            f"expected {expected} (or a folder holding exactly one such folder), found {found}; "
            "pass the folder as the publisher distributes it",
            file=str(self.root),
        )

    @abstractmethod
    def records(self) -> list[Record]:
        """All usable records under ``self.root``, in a deterministic (sorted) order."""

    @classmethod
    def write_phantoms(
        cls, root: Path, counts: dict[str, int], stream: Stream, *, scale: float = 1.0
    ) -> Path:
        """Write synthetic phantoms under ``root`` in this source's published layout.

        counts: class -> usable images, one entry per class of :attr:`published_classes`; ``stream``
        gives each item its own seeded generator; ``scale`` shrinks the images. Returns
        the folder to pass as ``--root NAME=DIR``. Called through
        :func:`medssl.data.phantoms.write_source`; a source without phantoms keeps this default.
        """
        raise NotImplementedError(f"{cls.__name__} writes no phantoms")


def register_source(name: str, *, published: tuple[str, ...] | None = None, **preset: Any):
    """Class decorator: register a reader under ``name``, optionally as a preset of it: with
    preset options, and ``published``, the classes that preset's publisher ships."""

    def decorator(cls: type[Source]) -> type[Source]:
        if preset or published:
            attrs: dict[str, Any] = {"preset": {**cls.preset, **preset}}
            if published:
                attrs["published_classes"] = published
            sub = type(cls.__name__ + "_" + name, (cls,), attrs)
            sub.registry_name = name
            sub.options()  # a preset's unknown or mistyped option fails here, at import
            SOURCES.add(name, sub)
        else:
            cls.registry_name = name
            SOURCES.add(name, cls)
        return cls

    return decorator


def open_source(name: str, root: str | Path, *, lenient: bool = False, **options: Any) -> Source:
    return source_class(name)(root, lenient=lenient, **options)


def source_class(name: str) -> type[Source]:
    """The registered source ``name`` (every module of this package imported first)."""
    _import_all()
    return SOURCES.get(name)


def source_names() -> list[str]:
    """Every registered source."""
    _import_all()
    return SOURCES.names()


def _import_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")
