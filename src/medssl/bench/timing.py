"""A timed batch stream: the one instrument behind every figure of ``medssl bench``.

``TimedStream`` is what ``Trainer.fit`` iterates in a bench run. It draws ``warmup + steps``
batches from successive epochs of a batch source and times the last ``steps`` of them *from
the trainer's side*: the clock starts when the trainer asks for batch ``warmup`` (so the
warm-up steps are done) and stops when it asks for the batch after the last one (so the last
optimizer step and its momentum hook are done). Whatever happens in between — producing the
batches (augmenting, loading, copying to the device) and the training steps — is in the
figure; epoch-end work (validation, checkpoints) is not. On CUDA the clock reads are preceded
by a device synchronisation, so queued kernels are counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch

from medssl.errors import ConfigError


class TimedStream:
    """Sized iterable of ``warmup + steps`` batches from ``epoch_batches(0)``, ``epoch_batches(1)``, ...

    epoch_batches(k): the batch source of epoch k (a sized or unsized iterable); sources are
    chained and truncated, so a bench run is one trainer epoch whatever the dataset size.
    to_device: applied to each batch as it is handed out (e.g. the host-to-device copy of a
    DataLoader's batch; identity when batches are already on the device).
    count: the number of items a batch holds (views for view pairs, images otherwise).
    """

    def __init__(
        self,
        epoch_batches: Callable[[int], Iterable[Any]],
        *,
        warmup: int,
        steps: int,
        device: torch.device,
        count: Callable[[Any], int],
        to_device: Callable[[Any], Any] | None = None,
    ) -> None:
        if steps < 1 or warmup < 0:
            raise ConfigError(
                f"bench: expected --steps >= 1 and --warmup >= 0, got {steps} and {warmup}"
            )
        self.epoch_batches, self.warmup, self.steps = epoch_batches, warmup, steps
        self.device, self.count = device, count
        self.to_device = to_device or (lambda b: b)
        self.seconds: float | None = None
        self.items = 0  # items in the timed batches
        self.batches = 0  # batches handed out, warm-up included
        self.input_shape: list[int] | None = None
        self.input_dtype: str | None = None
        self._t0 = 0.0

    def __len__(self) -> int:
        return self.warmup + self.steps

    @property
    def rate(self) -> float:
        """Items per second over the timed steps."""
        if self.seconds is None:
            raise RuntimeError("TimedStream.rate read before the stream was consumed")
        return self.items / max(self.seconds, 1e-12)

    def __iter__(self) -> Iterator[Any]:
        if self.warmup == 0:
            self._start()
        for batch in self._chained():
            if self.batches >= self.warmup:
                self.items += self.count(batch)
            self.batches += 1
            yield batch
            if self.batches == self.warmup:
                self._start()
        self._sync()
        self.seconds = time.perf_counter() - self._t0

    def _chained(self) -> Iterator[Any]:
        total, epoch = len(self), 0
        while self.batches < total:
            source = iter(self.epoch_batches(epoch))
            epoch += 1
            produced = False
            while self.batches < total:
                try:
                    batch = next(source)
                except StopIteration:
                    break
                produced = True
                batch = self.to_device(batch)
                if self.input_shape is None:
                    first = _first_tensor(batch)
                    self.input_shape = list(first.shape)
                    self.input_dtype = str(first.dtype).removeprefix("torch.")
                yield batch
            if not produced:
                raise ConfigError(
                    f"bench: epoch {epoch - 1} of the batch source yielded no batch; the database "
                    "has fewer images than one batch (lower --batch-size)"
                )

    def _start(self) -> None:
        self._sync()
        self._t0 = time.perf_counter()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def _first_tensor(batch: Any) -> torch.Tensor:
    if torch.is_tensor(batch):
        return batch
    if isinstance(batch, Mapping):
        return _first_tensor(next(iter(batch.values())))
    return _first_tensor(batch[0])


def count_views(batch: tuple[torch.Tensor, ...]) -> int:
    """Views in a batch of view tuples ((N, 1, H, W) each): N per view."""
    return sum(int(v.shape[0]) for v in batch)


def count_images(batch: Mapping[str, torch.Tensor]) -> int:
    """Images in a fine-tuning batch ({"x": (N, 1, H, W), ...})."""
    return int(batch["x"].shape[0])
