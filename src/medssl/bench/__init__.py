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

Result schema (``medssl.bench/1``; rates are per second of timed steps)::

    schema, created, medssl, torch       str
    device, device_name                  "cpu" / "cuda:0", CPU model or GPU name
    precision, precision_note            "32-true" | "bf16-mixed", and why
    channels_last, compile               bool
    threads, cpus                        torch intra-op threads, CPUs this process may use
    load_average                         {"start": [1, 5, 15 min], "end": [...]} or null
    batch_size, warmup_steps, steps      int
    database                             {name, synthetic, pretrain_train_images, finetune_train_images}
    methods                              {method: {
        ceiling | medssl | reference:      {views_per_s, seconds, items, steps, warmup_steps,
                                            cuda_max_allocated_mb (null off CUDA), peak_rss_mb
                                            (process peak so far), fingerprint}
                                           reference also: num_workers, transform
        ratio_medssl_to_ceiling            b / a
        ratio_medssl_to_reference          b / c
        same_model_and_step                the three fingerprints are equal
        meets_targets                      both ratios reach ``targets``
        batch_size, augmentation}}
    finetune                             {classification | segmentation: {images_per_s, seconds,
                                          items, steps, warmup_steps, cuda_max_allocated_mb,
                                          peak_rss_mb, fingerprint, batch_size}} ({} if skipped)
    targets                              {ratio_medssl_to_ceiling, ratio_medssl_to_reference} (issue 6)
    thesis_estimate_s                    float seconds, null without fine-tuning rates
    thesis_estimate                      {seconds, pretrain_s, finetune_s, pretrain_runs,
                                          finetune_runs, epochs, assumed, excludes} or null
    peak_rss_mb, peak_rss_workers_mb     process peak RSS; largest finished child (DataLoader worker)
    cuda_max_allocated_mb                max over paths, null off CUDA
    model_fingerprint                    {method: fingerprint of path (b)}
    throughput                           {method: (b) views/s, classification: img/s,
                                          segmentation: img/s}

A fingerprint is ``{task, parameters, trainable_parameters, init_checksum, optimizer,
optimizer_steps, precision, input_shape, input_dtype}`` (``bench.fingerprint``).
"""

from medssl.bench.run import BenchConfig, cache_file, run_bench, save_result

__all__ = ["BenchConfig", "cache_file", "run_bench", "save_result"]
