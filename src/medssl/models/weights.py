"""Weights you bring: a ResNet-18 file read, mapped onto medssl's encoder and checked strictly.

What an ``--init`` (fine-tuning), a ``pretrain.init`` (SSL pretraining from those weights) and
``medssl.load_encoder`` accept, one reading for all of them (:func:`load_weights`):

- a weights file, written by ``torch.save`` (``.pt``, ``.pth``, ...) or as safetensors, of
  - a torchvision ResNet-18 state dict (``torchvision.models.resnet18().state_dict()``:
    3-channel ``conv1``, ``fc`` head);
  - a timm ResNet-18 state dict (``timm.create_model("resnet18").state_dict()``): timm's
    ResNet names its layers as torchvision does, head ``fc`` (none with ``num_classes=0``),
    so a file cannot tell the two apart and neither needs to;
  - a medssl ``encoder.pt`` (1-channel ``conv1``, no ``fc``; also the state dict of
    segmentation_models_pytorch's ResNet-18 encoder);
  - any of these inside a checkpoint's ``"state_dict"`` entry (timm's ``train.py``,
    Lightning), with or without the ``module.`` prefix of a DDP-wrapped model;
  - a ``medssl finetune`` run's ``best.pt`` (its ``model.encoder.*`` weights; the task's head
    or decoder is left out);
- a folder: a ``medssl pretrain`` run (its ``encoder.pt``), a ``medssl finetune`` run (its
  ``best.pt``) or a ``medssl export`` folder (its ``encoder.safetensors``).

The mapping: the classifier head (``fc.*``) is dropped; a 3-channel ``conv1`` is folded to the
model's one channel by summing its filters over the input channels, the usual practice and
timm's own rule for ``in_chans=1`` (``timm.models.adapt_input_conv``, which does the fold
here): a grey image then gets the response its RGB copy (the grey value in all three channels)
got, since the convolution is linear. Every other key must be the model's, with the model's
shape: a missing, stray or mis-shaped key (another architecture, a truncated file) is a
ConfigError naming the file, the keys and what was expected. Nothing is ever downloaded.

:meth:`Weights.record` is what a run saves of the file it started from (its SHA-256, format
and layout): ``done.json``'s ``init_weights``.

Path resolution (:func:`weights_file`) imports no torch, so the CLI checks ``--init`` before
the training stack loads.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medssl.errors import ConfigError
from medssl.runfiles import BEST, ENCODER, EXPORT_SAFETENSORS

if TYPE_CHECKING:
    from torch import nn

ACCEPTED = (
    "a weights file (a medssl encoder.pt, or a torchvision or timm ResNet-18 state dict, as "
    ".pt/.pth or .safetensors) or a run folder (a `medssl pretrain` run's encoder.pt, a "
    "`medssl finetune` run's best.pt, a `medssl export` folder)"
)
FOLDER_FILES = (ENCODER, BEST, EXPORT_SAFETENSORS)
"""What a folder given as weights is read for, in this order (pretraining, fine-tuning,
export)."""
FINETUNE_PREFIX = "model.encoder."
"""Prefix of the encoder's keys in a fine-tuning run's ``best.pt`` (``{"model": task state}``:
the task's ``model`` is a Classifier or smp U-Net, both with a torchvision-style ``encoder``)."""
HEAD = "fc."  # the classifier head of torchvision's and timm's ResNets
SAFETENSORS_MAGIC_OFFSET = 8  # a safetensors file: u64 header length, then the JSON header


@dataclass(frozen=True)
class Weights:
    """A weights file as loaded into a model: where it came from and what was done to it."""

    file: str | None  # the file read (None for a state dict given in memory)
    sha256: str | None  # of the file's bytes
    format: str  # "torch" | "safetensors" | "state dict" (in memory)
    layout: str  # how the file names its keys, e.g. "torchvision/timm ResNet"
    folded_channels: int | None  # conv1's input channels before the fold (None: not folded)
    dropped: tuple[str, ...]  # keys of the file left out (the classifier head, a task's head)

    def record(self) -> dict[str, Any]:
        """What a run saves of its initial weights (``done.json``'s ``init_weights``)."""
        return {
            "file": self.file,
            "sha256": self.sha256,
            "format": self.format,
            "layout": self.layout,
            "conv1_folded_from": self.folded_channels,
            "dropped": list(self.dropped),
        }


def weights_file(path: str | os.PathLike, *, flag: str | None = None) -> Path:
    """The file that ``path`` names: itself, or a run/export folder's weights (FOLDER_FILES).

    ``flag`` (e.g. ``"--init"``) starts the error message. Imports no torch.
    """
    path = Path(path)
    where = f"{flag} {path}" if flag else str(path)
    if path.is_file():
        return path
    if path.is_dir():
        for name in FOLDER_FILES:
            if (path / name).is_file():
                return path / name
        raise ConfigError(
            f"{where}: a folder with no {', '.join(FOLDER_FILES)} in it; expected {ACCEPTED}"
        )
    raise ConfigError(f"{where}: no such file or folder; expected {ACCEPTED}")


def load_weights(source: str | os.PathLike | Mapping[str, Any], model: nn.Module) -> Weights:
    """Load ``source`` (a path :func:`weights_file` resolves, or a state dict) into ``model``
    strictly, mapped as the module docstring says; return what was loaded.

    ``model`` is a torchvision ResNet (medssl's encoder, smp's ResNet encoder): its ``fc.*``
    keys, when it has any, are not loaded.
    """
    if isinstance(source, Mapping):
        file, sha, fmt, raw = None, None, "state dict", dict(source)
    else:
        path = weights_file(source)
        file, sha = str(path), sha256_of(path)
        fmt, raw = _read(path)
    where = file or "state dict"
    state, layout, dropped = _unwrap(raw, where)
    target = model.state_dict()
    target = {k: v for k, v in target.items() if not k.startswith(HEAD)}
    state, folded = _fold_conv1(state, target)
    _check(state, target, where, layout)
    model.load_state_dict(state, strict=False)  # strict on every key but the model's fc
    return Weights(file, sha, fmt, layout, folded, dropped)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes (what runs record of the weights they start from)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _read(path: Path) -> tuple[str, Any]:
    """(format, content) of a torch.save or safetensors file."""
    import torch

    with open(path, "rb") as f:
        head = f.read(SAFETENSORS_MAGIC_OFFSET + 1)
    try:
        if head[SAFETENSORS_MAGIC_OFFSET:] == b"{":
            from safetensors.torch import load_file

            return "safetensors", load_file(path, device="cpu")
        return "torch", torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated, foreign or non-torch file
        first = (str(e).splitlines() or [""])[0][:160]
        raise ConfigError(
            f"{path}: cannot be read as a PyTorch or safetensors state dict ({type(e).__name__}: "
            f"{first}); expected {ACCEPTED}"
        ) from None


def _unwrap(raw: Any, where: str) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    """The ResNet-18 keys inside ``raw``: (state, layout, keys left out)."""
    import torch

    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}: holds a {type(raw).__name__}, not a state dict (name -> tensor); "
            f"expected {ACCEPTED}"
        )
    wrapped = ""
    model = raw.get("model")
    if isinstance(model, Mapping) and any(str(k).startswith(FINETUNE_PREFIX) for k in model):
        state = {
            k[len(FINETUNE_PREFIX) :]: v for k, v in model.items() if k.startswith(FINETUNE_PREFIX)
        }
        dropped = tuple(sorted(k for k in model if not k.startswith(FINETUNE_PREFIX)))
        return state, "medssl fine-tuning best.pt", dropped
    if isinstance(raw.get("state_dict"), Mapping):
        raw, wrapped = raw["state_dict"], " in a checkpoint's 'state_dict'"
    not_tensors = sorted(str(k) for k, v in raw.items() if not torch.is_tensor(v))
    if not_tensors:
        shown = ", ".join(not_tensors[:8])
        raise ConfigError(
            f"{where}: entries that are not tensors ({shown}); expected a state dict "
            f"(name -> tensor): {ACCEPTED}"
        )
    state = dict(raw)
    if state and all(k.startswith("module.") for k in state):  # saved from a DDP wrapper
        state, wrapped = (
            {k[len("module.") :]: v for k, v in state.items()},
            wrapped + ", DDP 'module.' prefix",
        )
    dropped = tuple(sorted(k for k in state if k.startswith(HEAD)))
    state = {k: v for k, v in state.items() if not k.startswith(HEAD)}
    conv1 = state.get("conv1.weight")
    channels = conv1.shape[1] if conv1 is not None and conv1.dim() == 4 else None
    if conv1 is None:
        layout = "keys of another network (no conv1.weight)"
    elif dropped or channels == 3:
        layout = "torchvision/timm ResNet"
    else:
        layout = "medssl encoder (torchvision ResNet keys, 1-channel conv1, no fc)"
    return state, layout + wrapped, dropped


def _fold_conv1(
    state: dict[str, Any], target: Mapping[str, Any]
) -> tuple[dict[str, Any], int | None]:
    """``state`` with a 3-channel ``conv1`` summed to the model's 1 channel (timm's rule)."""
    w, want = state.get("conv1.weight"), target.get("conv1.weight")
    if w is None or want is None or w.dim() != 4 or want.dim() != 4:
        return state, None
    if w.shape[1] == 3 and want.shape[1] == 1:
        from timm.models import adapt_input_conv

        return {**state, "conv1.weight": adapt_input_conv(1, w)}, 3
    return state, None


def _check(state: Mapping[str, Any], target: Mapping[str, Any], where: str, layout: str) -> None:
    """A ConfigError listing every missing, unexpected and mis-shaped key, if any."""
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    mismatched = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
        for k in set(state) & set(target)
        if tuple(state[k].shape) != tuple(target[k].shape)
    )
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if "conv1.weight" in state and "conv1.weight" in target:
        c_file, c_model = state["conv1.weight"].shape[1], target["conv1.weight"].shape[1]
        if c_file != c_model:
            parts.append(
                f"input channels differ: file has {c_file}, model expects {c_model} (a "
                "3-channel conv1 is folded to 1; other counts are not)"
            )
    for name, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("mismatched shape", mismatched),
    ):
        if keys:
            more = f", ... ({len(keys)} in all)" if len(keys) > 8 else ""
            parts.append(f"{name} keys: {', '.join(keys[:8])}{more}")
    parts += _architecture_hints(unexpected, nothing_matched=len(missing) == len(target))
    raise ConfigError(
        f"{where}: does not fit medssl's 1-channel ResNet-18 encoder (keys read as {layout}; "
        f"{'; '.join(parts)}); expected {len(target)} tensors named as torchvision's "
        "resnet18 names them (conv1, bn1, layer1-4 of 2 basic blocks each; fc is dropped): "
        f"{ACCEPTED}"
    )


def _architecture_hints(unexpected: list[str], *, nothing_matched: bool) -> list[str]:
    """What stray keys say of the file's architecture (a deeper ResNet, a bottleneck one)."""
    hints = []
    blocks = {int(m.group(1)) for k in unexpected if (m := re.match(r"layer\d\.(\d+)\.", k))}
    if blocks and max(blocks) >= 2:
        hints.append(
            f"the file has {max(blocks) + 1} blocks in a stage where ResNet-18 has 2: a "
            "ResNet-34 or deeper"
        )
    if any(re.match(r"layer\d\.\d+\.conv3\.", k) for k in unexpected):
        hints.append("its blocks have a conv3: bottleneck blocks (ResNet-50 or deeper)")
    prefixes = {k.split(".", 1)[0] for k in unexpected}
    if nothing_matched and len(prefixes) == 1:
        hints.append(
            f"every stray key starts with {next(iter(prefixes))!r}: the weights of a "
            "wrapper around the network; save the ResNet's own state_dict()"
        )
    return hints


__all__ = ["ACCEPTED", "Weights", "load_weights", "weights_file"]
