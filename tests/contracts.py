"""The contract checks every registered fine-tuning task, SSL method and source must pass, as
plain functions.

``test_tasks_contract.py``, ``test_ssl.py`` and ``test_sources_contract.py`` run them over the
registries; a toy task, method or source registered inside a test
(``test_extension_recipes.py``) is checked by the same code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medssl.data.batches import eval_batches
from medssl.data.database import Database
from medssl.data.labelled import finetune_splits
from medssl.data.records import CLASSES, MODALITIES
from medssl.data.sources import open_source
from medssl.engine.monitor import check_collapse, collapse_score
from medssl.errors import TrainingError
from medssl.tasks.finetune import predict, resolve_config
from medssl.tasks.task import get_task

# ----------------------------------------------------------------------------- tasks


def check_task_contract(name: str, db: Database) -> None:
    """Task ``name`` on ``db``: its tensors hold ``x`` (N, 1, H, W) in [-1, 1] and targets of N
    rows; its network takes a finite training step and predicts probabilities of N rows with a
    finite summed loss; its metrics on those predictions hold every epoch and summary metric,
    and its epoch logs hold its monitor."""
    cls = get_task(name)
    assert cls.name == name and cls.monitor.startswith("val_"), (cls.name, cls.monitor)
    task = cls(resolve_config(task=name))
    splits, _ = finetune_splits(db, needs_masks=task.needs_masks, task=name)
    train = splits["train"]
    torch.manual_seed(0)
    network = task.build("random", train)
    data = task.tensors(train, torch.device("cpu"))
    n = len(train)
    assert data["x"].shape == (n, 1, *train.images.shape[1:]) and data["x"].dtype == torch.float32
    assert -1.0 <= float(data["x"].min()) <= float(data["x"].max()) <= 1.0
    assert all(len(t) == n for t in data.values()), {k: len(t) for k, t in data.items()}
    loss, logs = network.training_step(next(iter(eval_batches(data, 4))))
    assert loss.dim() == 0 and torch.isfinite(loss) and isinstance(logs, dict)
    loss.backward()
    network.after_optimizer_step(1, 1)
    probs, mean_loss = predict(network, data, 4)
    assert len(probs) == n and np.isfinite(probs).all() and np.isfinite(mean_loss)
    metrics = task.metrics(train, probs, mean_loss)
    missing = {*cls.epoch_metrics, *cls.summary_metrics} - set(metrics)
    assert not missing, f"{name}: metrics lack {sorted(missing)}"
    epoch = task.epoch_logs(task.metrics(train, probs, mean_loss, distances=False), {})
    assert cls.monitor in epoch, f"{name}: epoch logs {sorted(epoch)} lack {cls.monitor}"


# ----------------------------------------------------------------------------- SSL methods


def two_views(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, size, size, generator=g), torch.randn(n, 1, size, size, generator=g)


class Constant(nn.Module):
    """An encoder that maps every image to the same 512-d feature (a collapsed one)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(512))

    def forward(self, x):
        return self.w.expand(x.shape[0], -1) + 0 * x.mean()


def check_step_contract(m: nn.Module) -> None:
    """One training step: a finite scalar loss and a dict of logs, gradients reach conv1,
    frozen (momentum) weights move only in ``after_optimizer_step``, ``embed`` is (N, 512)."""
    frozen = {k: p.detach().clone() for k, p in m.named_parameters() if not p.requires_grad}
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    loss, logs = m.training_step(two_views())
    assert loss.dim() == 0 and torch.isfinite(loss) and isinstance(logs, dict)
    opt.zero_grad()
    loss.backward()
    assert m.encoder.conv1.weight.grad is not None and m.encoder.conv1.weight.grad.abs().sum() > 0
    opt.step()
    for k, p in m.named_parameters():
        if k in frozen:  # momentum encoders: untouched by forward, backward and optimizer
            assert torch.equal(p, frozen[k]), k
    m.after_optimizer_step(1, 10)
    if frozen:
        assert any(not torch.equal(p, frozen[k]) for k, p in m.named_parameters() if k in frozen)
    with torch.no_grad():
        assert m.embed(two_views()[0]).shape == (4, 512)


def check_validation_has_no_side_effects(m: nn.Module) -> None:
    """``validation_step`` (in eval mode) gives a finite loss and leaves every buffer alone."""
    m = m.eval()
    before = {k: v.clone() for k, v in m.named_buffers()}
    logs = m.validation_step(two_views())
    assert torch.isfinite(torch.as_tensor(logs["loss"]))
    m.after_optimizer_step(1, 10)  # nothing pending from validation: only EMA weights may move
    for k, v in m.named_buffers():  # queues, their pointers, BN statistics
        assert torch.equal(before[k], v), k


def check_collapse_guard(build: Callable[[nn.Module], nn.Module]) -> None:
    """The collapse guard fires on the method built around a constant encoder, and passes
    spread-out features."""
    m = build(Constant())
    with torch.no_grad():
        z = m.embed(two_views(n=8)[0])
    with pytest.raises(TrainingError, match="collapsed at epoch 3"):
        check_collapse(collapse_score(z), 0.01, epoch=3)
    check_collapse(collapse_score(torch.randn(64, 512)), 0.01, epoch=0)  # spread-out: passes


# ----------------------------------------------------------------------------- sources


def check_source_contract(
    name: str,
    root: Path,
    counts: dict[str, int],
    *,
    patients: bool,
    spacing: tuple[float, float] | None = None,
) -> None:
    """Source ``name`` reads its phantom miniature at ``root`` (written with ``counts``) into
    sorted, unique, repeatable records of the source's modality and classes, whose files exist
    and which all load: float32 [0, 1] images, not flat, boolean masks of the image's shape
    (empty for normals) where a record has one. ``patients``: whether records carry patient
    ids; ``spacing``: the pixel spacing every image carries (None: none does)."""
    source = open_source(name, root)
    records = source.records()
    assert records, f"{name}: no records from {root}"
    assert [r.file for r in records] == sorted(r.file for r in records)
    assert len({r.file for r in records}) == len(records)
    assert Counter(r.label for r in records) == Counter(counts)
    again = open_source(name, root).records()
    assert [(r.file, r.label, r.patient, r.mask_files) for r in again] == [
        (r.file, r.label, r.patient, r.mask_files) for r in records
    ]
    for r in records:
        assert r.source == name and r.label in CLASSES and r.modality in MODALITIES
        assert r.modality == type(source).modality
        assert (r.patient is not None) == patients, r
        assert (
            (root / r.file).is_file()
            or (root.parent / r.file).is_file()
            or (source.root / r.file).is_file()
        )
    for r in records:
        loaded = r.load()
        assert loaded.image.dtype == np.float32 and loaded.image.ndim == 2
        assert 0.0 <= float(loaded.image.min()) <= float(loaded.image.max()) <= 1.0
        assert float(loaded.image.std()) > 0, f"{r.file} is flat"
        assert (loaded.spacing is not None) == (spacing is not None), r.file
        if loaded.spacing is not None:
            assert loaded.spacing == pytest.approx(spacing, rel=1e-5)
        if r.has_mask:
            assert loaded.mask is not None and loaded.mask.dtype == bool
            assert loaded.mask.shape == loaded.image.shape
            if r.label == "normal":
                assert not loaded.mask.any()
        else:
            assert loaded.mask is None


def check_source_accepts_parent_folder(name: str, root: Path) -> None:
    """The folder above the published top folder reads into the same records, prefixed."""
    parent = root.parent
    if [p for p in parent.iterdir() if p.is_dir()] != [root]:
        pytest.skip("the phantom writer put more than the top folder in the parent")
    files = [r.file for r in open_source(name, root).records()]
    from_parent = [r.file for r in open_source(name, parent).records()]
    assert from_parent == [f"{root.name}/{f}" for f in files]
