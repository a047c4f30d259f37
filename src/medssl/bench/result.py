"""What ``medssl bench`` measured, as typed records; the JSON it prints and saves is
:meth:`BenchResult.to_json` (schema ``medssl.bench/2``; rates are per second of timed steps).

A *path run* (``MethodBench.ceiling`` / ``medssl`` / ``reference``) is the round with the
median rate: ``{views_per_s, seconds, items, steps, warmup_steps, cuda_max_allocated_mb (null
off CUDA), peak_rss_mb (process peak so far), fingerprint, rounds (every round's rate)}``;
the reference's also ``num_workers`` and ``transform``. A fine-tuning entry
(``BenchResult.finetune[task]``) is ``{images_per_s, seconds, items, steps, warmup_steps,
cuda_max_allocated_mb, peak_rss_mb, fingerprint, rounds, batch_size, plain_loop,
ratio_to_plain_loop, ratio_rounds, epochs}``: the median of alternating rounds through the
trainer and in the plain loop (``plain_loop``: ``{rate, seconds, items, steps, rounds}``);
``epochs`` the whole training phase per epoch against a plain loop doing the same job
(``bench.finetune_epochs``: ``{preset, batch_size, epochs, train_images, val_images,
bn_statistics, seconds_per_epoch, plain_seconds_per_epoch, rounds, plain_rounds,
ratio_to_plain_loop, ratio_rounds}``).
``variants`` is :func:`medssl.bench.variants.variant_ratios`'s record (channels_last and
compile against the default step) and ``time_to_useful``
:func:`medssl.bench.useful.time_to_useful`'s (None when skipped).
A fingerprint is ``bench.fingerprint``'s ``{task, parameters, trainable_parameters,
init_checksum, optimizer, optimizer_steps, precision, input_shape, input_dtype}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medssl.errors import DataError

SCHEMA = "medssl.bench/2"


@dataclass(frozen=True)
class BenchDatabase:
    name: str
    synthetic: bool  # made in memory by bench.synthetic (no --database)
    pretrain_train_images: int
    finetune_train_images: int


@dataclass(frozen=True)
class MethodBench:
    """One SSL method's three paths (a) ceiling, (b) medssl, (c) reference, and their ratios."""

    ceiling: dict[str, Any]  # path run: views on the device, no data pipeline
    medssl: dict[str, Any]  # path run: the pretraining stream
    reference: dict[str, Any]  # path run: lightly transforms in a DataLoader
    ratio_medssl_to_ceiling: float  # b / a
    ratio_medssl_to_reference: float  # b / c
    same_model_and_step: bool  # every round of every path has the same fingerprint
    batch_size: int
    augmentation: str
    meets_targets: bool  # both ratios reach BenchResult.targets


@dataclass(frozen=True)
class ThesisEstimate:
    """The thesis protocol's duration at the measured rates (``bench.estimate``)."""

    seconds: float
    pretrain_s: float
    finetune_s: float
    pretrain_runs: int
    finetune_runs: int
    epochs: int
    assumed: str | None  # methods not measured, taken at the mean measured rate
    excludes: str


@dataclass(frozen=True)
class BenchResult:
    schema: str  # SCHEMA
    created: str  # ISO 8601, UTC
    medssl: str  # versions
    torch: str
    device: str  # "cpu" / "cuda:0"
    device_name: str  # CPU model or GPU name
    precision: str  # 32-true | bf16-mixed
    precision_note: str  # why that precision
    channels_last: bool
    compile: bool
    threads: int  # torch intra-op threads
    cpus: int  # CPUs this process may use
    load_average: dict[str, list[float] | None]  # {"start": [1, 5, 15 min], "end": ...}
    batch_size: int
    warmup_steps: int
    steps: int  # timed steps per path and round
    rounds: int
    database: BenchDatabase
    methods: dict[str, MethodBench]
    finetune: dict[str, dict[str, Any]]  # task -> fine-tuning entry ({} if skipped)
    targets: dict[str, float]  # {ratio_medssl_to_ceiling, ratio_medssl_to_reference}
    thesis_estimate_s: float | None  # None without fine-tuning rates
    thesis_estimate: ThesisEstimate | None
    peak_rss_mb: float
    peak_rss_workers_mb: float  # largest finished child (a DataLoader worker)
    cuda_max_allocated_mb: float | None  # max over paths, None off CUDA
    model_fingerprint: dict[str, dict[str, Any]]  # method -> fingerprint of path (b)
    throughput: dict[str, float]  # method: (b) views/s; classification, segmentation: img/s
    variants: dict[str, dict[str, Any]] | None  # bench.variants; None when skipped
    time_to_useful: dict[str, Any] | None  # bench.useful.time_to_useful; None when skipped

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, where: str = "bench result") -> BenchResult:
        """The record of a saved result (``where``: its file, for errors); a DataError when its
        schema or keys are not this version's."""
        _check_keys(cls, data, where, "")
        if data["schema"] != SCHEMA:
            raise DataError(
                f"schema {data['schema']!r}, expected {SCHEMA!r}; rerun `medssl bench`", file=where
            )
        estimate = data["thesis_estimate"]
        return cls(
            **{
                **data,
                "database": _record(BenchDatabase, data["database"], where, "database"),
                "methods": {
                    m: _record(MethodBench, r, where, f"methods.{m}")
                    for m, r in data["methods"].items()
                },
                "thesis_estimate": None
                if estimate is None
                else _record(ThesisEstimate, estimate, where, "thesis_estimate"),
            }
        )


def _check_keys(cls: type, data: Any, where: str, key: str) -> None:
    """A DataError unless ``data`` is a mapping with exactly ``cls``'s fields."""
    names = {f.name for f in dataclasses.fields(cls)}
    found = set(data) if isinstance(data, Mapping) else set()
    if not isinstance(data, Mapping) or found != names:
        raise DataError(
            f"{key + ': ' if key else ''}not a {SCHEMA} record (missing "
            f"{sorted(names - found)}, unknown {sorted(found - names)}); rerun `medssl bench`",
            file=where,
        )


def _record(cls: type, data: Any, where: str, key: str) -> Any:
    _check_keys(cls, data, where, key)
    return cls(**data)
