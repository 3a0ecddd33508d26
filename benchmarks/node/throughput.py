"""Loader throughput per DataLoader worker count: samples/s, CPU per sample, RSS per worker.

One case = one config x one source x one worker count, a fresh DataLoader over
``workers * (batches_per_worker + 1) * batch_size`` rows, so every worker has the same
work at any count. The clock starts when the ``workers``-th batch arrives (every
worker has delivered one: spawn, imports and the first footers are behind us) and
counts only the batches after it. CPU is the process tree's (main, live and reaped
workers) over the same interval. RSS: peak per worker (sampled every 100 ms; a
forked worker's RSS includes the parent pages it maps) and each worker's USS (its
private pages) read once just before the clock stops.

Scaling efficiency ``rate(w) / (w * rate(1))``: 1.0 is linear; the issue's goal is
>= 0.8 at 8 workers on prepared shards (a 16-core node).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
import torch.utils.data

import tali
from benchmarks.suite.harness import batch_size_of, tree_cpu_seconds
from tali.observe import ResourceSampler

#: What the loader benchmark reads: the default sample and the A/V pair alone.
CONFIGS: dict[str, Callable[[], tali.TaliConfig]] = {
    "default": lambda: tali.TaliConfig(audio=tali.AudioConfig(on_missing="zeros")),
    "av": lambda: tali.TaliConfig(
        modalities=("youtube_content_video", "youtube_content_audio"),
        audio=tali.AudioConfig(on_missing="zeros"),
    ),
}


def _uss_of_children() -> list[int]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            out.append(child.memory_full_info().uss)
        except psutil.Error:
            continue
    return out


def measure_case(
    root: Path, config: tali.TaliConfig, *, workers: int, batch_size: int, batches_per_worker: int
) -> dict[str, Any]:
    """One timed pass (see the module docstring)."""
    ds = tali.TaliDataset(root, split="train", config=config)
    rows = workers * (batches_per_worker + 1) * batch_size
    if rows > len(ds):
        raise ValueError(f"{rows} rows needed, the replicated split has {len(ds)}")
    subset = torch.utils.data.Subset(ds, range(rows))
    loader = tali.make_loader(subset, batch_size=batch_size, num_workers=workers, shuffle=False)
    sampler = ResourceSampler(interval_seconds=0.1).start()
    try:
        iterator = iter(loader)
        for _ in range(workers):  # one batch from every worker before the clock starts
            next(iterator)
        cpu0, t0 = tree_cpu_seconds(), time.perf_counter()
        n = 0
        uss: list[int] = []
        for i, batch in enumerate(iterator):
            n += batch_size_of(batch)
            if i == max(0, (batches_per_worker - 1) * workers - 1):
                uss = _uss_of_children()  # workers still alive, at their working size
        seconds = time.perf_counter() - t0
        del iterator  # joins the workers: their CPU moves to children_*
        cpu = tree_cpu_seconds() - cpu0
    finally:
        sampler.stop()
    worker_peaks = [p.peak_rss_bytes for p in sampler.processes.values() if p.role == "worker"]
    main_peak = max((p.peak_rss_bytes for p in sampler.processes.values() if p.role == "main"), default=0)
    return {
        "workers": workers,
        "samples": n,
        "seconds": seconds,
        "samples_per_second": n / seconds if seconds > 0 else 0.0,
        "cpu_s_per_sample": cpu / n if n else None,
        "peak_rss_mib_per_worker_max": max(worker_peaks, default=0) / 2**20,
        "peak_rss_mib_per_worker_median": (statistics.median(worker_peaks) if worker_peaks else 0) / 2**20,
        "uss_mib_per_worker_max": max(uss, default=0) / 2**20,
        "peak_rss_mib_main": main_peak / 2**20,
    }


def scaling(
    sources: dict[str, Path],
    *,
    workers: Sequence[int],
    batch_size: int,
    batches_per_worker: int,
    rounds: int,
    deadline: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Every config x source x worker count; cases that would pass ``deadline`` are skipped."""
    out: dict[str, Any] = {
        "batch_size": batch_size,
        "batches_per_worker": batches_per_worker,
        "rounds": rounds,
        "cases": {},
    }
    # Prepared first: the scaling goal is stated on prepared shards.
    order = [(c, s) for s in sorted(sources, key=lambda s: s != "prepared") for c in CONFIGS]
    for config_name, source_name in order:
        config = CONFIGS[config_name]()
        key = f"{config_name}/{source_name}"
        cases: list[dict[str, Any]] = []
        out["cases"][key] = cases
        # Warm-up: footers, page cache, first imports in this process.
        measure_case(sources[source_name], config, workers=1, batch_size=batch_size, batches_per_worker=1)
        base_rate: float | None = None
        for w in workers:
            # The next case's wall time if it scales at 70 % of linear up to the core count.
            parallel = 0.7 * min(w, os.cpu_count() or 1)
            samples = rounds * w * (batches_per_worker + 1) * batch_size
            estimate = samples / (base_rate * parallel) + 2 * rounds if base_rate else 0.0
            if time.monotonic() + estimate > deadline:
                cases.append({"workers": w, "skipped": f"budget: ~{estimate:.0f} s needed"})
                continue
            runs = [
                measure_case(
                    sources[source_name],
                    config,
                    workers=w,
                    batch_size=batch_size,
                    batches_per_worker=batches_per_worker,
                )
                for _ in range(rounds)
            ]
            case = dict(runs[-1])
            case["samples_per_second"] = statistics.median(r["samples_per_second"] for r in runs)
            case["cpu_s_per_sample"] = statistics.median(r["cpu_s_per_sample"] or 0.0 for r in runs)
            case["round_samples_per_second"] = [r["samples_per_second"] for r in runs]
            if w == 1:
                base_rate = case["samples_per_second"]
            if base_rate:
                case["scaling_efficiency"] = case["samples_per_second"] / (w * base_rate)
            cases.append(case)
            log(f"loader {key} x{w}: {case['samples_per_second']:.1f} samples/s")
    eff8 = [c for c in out["cases"].get("default/prepared", []) if c.get("workers") == 8]
    out["goal_prepared_default_8_workers"] = {
        "target": 0.8,
        "scaling_efficiency": eff8[0].get("scaling_efficiency") if eff8 else None,
    }
    return out
