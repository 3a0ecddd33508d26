"""Timing and memory for one benchmark case, the same way for every loader.

A case is a factory ``make(workers) -> iterable of batches`` plus a name. One
measurement = one iterator over ``epochs`` passes of the rows: DataLoader
start-up (worker spawn, first batch) is excluded by timing from the first batch
on, so the number is the steady-state rate a training loop sees. Rounds of
different cases are interleaved by the caller; we report the median and the
spread. Peak RSS is the peak of the whole process tree's summed RSS, sampled
every 100 ms by :class:`tali.observe.ResourceSampler` (shared pages count once per
process, as ``ps`` would show them).

CPU time per sample is measured over the same interval (this process, live
workers and reaped ones). On a machine shared with other jobs it is the stable
number: wall-clock rates move with the neighbours' load, CPU per sample barely
does, and on a dedicated machine with as many cores as workers the rate is
``workers / cpu_per_sample``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil
import torch
import torch.utils.data

from tali.collation import collate
from tali.observe import ResourceSampler

LoaderFactory = Callable[[int], Iterable[Any]]


@dataclass
class Case:
    name: str
    make: LoaderFactory
    workers: int = 1
    group: str = "compare"
    params: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        rates = [r["samples_per_second"] for r in self.runs]
        return {
            "name": self.name,
            "group": self.group,
            "workers": self.workers,
            **self.params,
            "samples_per_second": statistics.median(rates) if rates else None,
            "spread": (max(rates) - min(rates)) / statistics.median(rates) if len(rates) > 1 else 0.0,
            "runs": len(rates),
            "samples": self.runs[-1]["samples"] if self.runs else 0,
            "peak_rss_mib": max(r["peak_rss_bytes"] for r in self.runs) / 2**20 if self.runs else None,
            "cpu_ms_per_sample": statistics.median(r["cpu_ms_per_sample"] for r in self.runs)
            if self.runs
            else None,
            # Per round, in order: goals pair each round's numbers with another case's.
            "round_samples_per_second": [r["samples_per_second"] for r in self.runs],
            "round_cpu_ms_per_sample": [r["cpu_ms_per_sample"] for r in self.runs],
        }


def batch_size_of(batch: Any) -> int:
    if isinstance(batch, dict):
        ids = batch.get("item_idx")
        if ids is not None:
            return len(ids)
    if isinstance(batch, list | tuple):
        return len(batch)
    raise TypeError(f"cannot tell the size of a {type(batch).__name__} batch")


def tree_cpu_seconds() -> float:
    """CPU seconds of this process, its live descendants and its reaped children."""
    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.Error:
            continue
        total += c.user + c.system
    return total


def measure(case: Case) -> dict[str, float]:
    sampler = ResourceSampler(interval_seconds=0.1).start()
    try:
        iterator = iter(case.make(case.workers))
        first = next(iterator)
        cpu0, t0 = tree_cpu_seconds(), time.perf_counter()
        n = 0
        for batch in iterator:
            n += batch_size_of(batch)
        seconds = time.perf_counter() - t0
        del first, iterator  # joins the workers: their CPU moves to children_*
        cpu = tree_cpu_seconds() - cpu0
    finally:
        sampler.stop()
    run = {
        "samples": n,
        "seconds": seconds,
        "samples_per_second": n / seconds if seconds > 0 else 0.0,
        "cpu_ms_per_sample": 1e3 * cpu / n if n else 0.0,
        "peak_rss_bytes": sampler.summary()["peak_rss_bytes"],
    }
    case.runs.append(run)
    return run


class Repeat(torch.utils.data.Dataset):
    """``epochs`` passes over a map-style dataset in one iterator (one worker start-up).

    Each pass is a new epoch for datasets with ``set_epoch`` semantics: the index
    is offset, not the epoch, so all loaders see the very same rows and choices."""

    def __init__(self, dataset: Any, epochs: int) -> None:
        self.dataset, self.epochs = dataset, epochs

    def __len__(self) -> int:
        return len(self.dataset) * self.epochs

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index % len(self.dataset)]


class RepeatIterable(torch.utils.data.IterableDataset):
    def __init__(self, dataset: torch.utils.data.IterableDataset, epochs: int) -> None:
        self.dataset, self.epochs = dataset, epochs

    def __iter__(self):
        for _ in range(self.epochs):
            yield from self.dataset


def loader(dataset: Any, workers: int, batch_size: int, epochs: int) -> torch.utils.data.DataLoader:
    repeated = (
        RepeatIterable(dataset, epochs)
        if isinstance(dataset, torch.utils.data.IterableDataset)
        else Repeat(dataset, epochs)
    )
    kwargs: dict[str, Any] = {"prefetch_factor": 2} if workers > 0 else {}
    return torch.utils.data.DataLoader(
        repeated, batch_size=batch_size, num_workers=workers, collate_fn=collate, **kwargs
    )


def run_interleaved(cases: Sequence[Case], rounds: int, log: Callable[[str], None] = lambda _: None) -> None:
    """``rounds`` rounds; each round runs every case once, in an order that alternates."""
    for r in range(rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for case in order:
            run = measure(case)
            log(
                f"round {r + 1}/{rounds} {case.name} x{case.workers}: {run['samples_per_second']:.2f} samples/s"
            )
