"""Self-supervised methods: one file per method, each registered in ``METHODS`` by name.

A method is a small ``nn.Module`` around the shared encoder (``medssl.models.encoder``) that
follows the training protocol of ``medssl.engine.trainer``:

- ``training_step(views) -> (loss, logs)`` with ``views = (x0, x1)``, each (N, 1, 64, 64);
- ``validation_step(views) -> logs`` (no side effects: queues and momentum encoders untouched);
- ``after_optimizer_step(step, total_steps)``: the only place where momentum encoders and
  queues change;
- ``embed(x) -> (N, 512)``: the encoder's features (what fine-tuning starts from).

Each method has a ``Config`` dataclass whose fields are its hyperparameters, every default
citing its source. A 4th method is one new file in this folder: modules here are imported
on first use of ``METHODS`` and register themselves.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, ClassVar

import torch
from torch import nn

from medssl.config import from_dict
from medssl.registry import Registry

METHODS: Registry[type[SSLMethod]] = Registry("SSL method")


class SSLMethod(nn.Module):
    """Base class: holds ``encoder`` (ResNet-18 -> (N, 512)); subclasses add heads and a loss."""

    Config: ClassVar[type]

    def __init__(self, encoder: nn.Module, config: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = config

    def compute_loss(self, views: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, Any]]:
        """The method's loss on two views; no side effects. Subclasses implement it."""
        raise NotImplementedError

    def training_step(self, views: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.compute_loss(views)

    @torch.no_grad()
    def validation_step(self, views: tuple[torch.Tensor, ...]) -> dict[str, Any]:
        loss, logs = self.compute_loss(views)
        return {"loss": loss, **logs}

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Momentum/queue updates (none by default). ``step`` counts optimizer steps from 1."""

    @classmethod
    def fit_to_data(cls, config: Any, *, n_train: int, batch_size: int) -> Any:
        """The method's config adapted to the run's data (e.g. a queue bounded by the number of
        pretraining images); unchanged by default. The pretraining run applies it once, before
        it builds the method, and saves the adapted config."""
        return config

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 1, H, W) -> encoder features (N, 512)."""
        return self.encoder(x)


def method_config(name: str, options: Any = None) -> Any:
    """The typed config of method ``name``: ``options`` (a mapping of some of its fields) laid
    over its defaults, or ``options`` itself when it is already that Config."""
    cls = get_method(name)
    if isinstance(options, cls.Config):
        return options
    return from_dict(cls.Config, dict(options or {}), where=f"method_options ({name})")


def build_method(name: str, encoder: nn.Module, options: Any = None) -> SSLMethod:
    """Instantiate a registered method around ``encoder`` (unknown names list the valid ones)."""
    return get_method(name)(encoder, method_config(name, options))


def get_method(name: str) -> type[SSLMethod]:
    _discover()
    return METHODS.get(name)


def method_names() -> list[str]:
    _discover()
    return METHODS.names()


_DISCOVERED = False


def _discover() -> None:
    """Import every module of this package once, so that each method registers itself."""
    global _DISCOVERED
    if not _DISCOVERED:
        _DISCOVERED = True
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
