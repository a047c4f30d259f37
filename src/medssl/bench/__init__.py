"""``medssl bench``: how fast pretraining runs here, against its own ceiling and a reference.

For each SSL method, in one process, three paths train the same model with the same step
(``engine.Trainer``'s) and differ only in where their batches come from:

- ``ceiling`` (a): views already on the device, no data pipeline;
- ``medssl`` (b): the pretraining stream (uint8 database on the device, batched augmentation);
- ``reference`` (c): lightly's PIL transforms in a DataLoader with worker processes.

Plus the fine-tuning train-step rates (classification, U-Net segmentation) and the thesis
protocol's estimated duration at these rates. ``run_bench(BenchConfig(...))`` returns the
result; ``save_result`` writes it to ``~/.cache/medssl/bench.json`` (the benchmark stage's
duration estimate reads its ``throughput``).

The result is a :class:`~medssl.bench.result.BenchResult` (schema ``medssl.bench/2``: the
records of ``medssl.bench.result``, saved as their JSON).
"""

from medssl.bench.result import BenchResult
from medssl.bench.run import BenchConfig, cache_file, run_bench, save_result

__all__ = ["BenchConfig", "BenchResult", "cache_file", "run_bench", "save_result"]
