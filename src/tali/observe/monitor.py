"""The training loop's view of the loader: one object to read, log, render or export.

>>> monitor = Monitor()
>>> dataset = TaliDataset(root, collect_stats=True, on_error="skip")
>>> with monitor:
...     for batch in monitor.watch(make_loader(dataset)):
...         ...                       # train; batch no longer holds "stats"
...         log(monitor.snapshot().to_dict())

Per-stage times arrive inside batches (see :mod:`tali.clock`), so they
are already totalled across DataLoader workers; :meth:`Monitor.all_ranks`
gathers the totals of every rank with ``torch.distributed``. Resources come
from :class:`~tali.observe.resources.ResourceSampler`, bad rows from the
:class:`~tali.data.policy.ErrorReport` records riding in the same batches.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import torch

from tali.clock import STAGES, STATS_KEY
from tali.data.policy import ERRORS_KEY, ErrorReport
from tali.errors import TaliConfigError
from tali.observe.resources import ResourceSampler

__all__ = ["Monitor", "MonitorSnapshot", "merge_snapshots"]


@dataclass(frozen=True, kw_only=True)
class MonitorSnapshot:
    """Totals at one moment. ``stages`` maps a stage label to ``seconds`` (summed
    over workers: CPU-side work, not wall time), ``calls``, ``mean_ms`` per call
    and ``share`` of all stage time. ``workers`` lists ``(rank, worker)`` totals."""

    elapsed_seconds: float
    samples: int
    batches: int
    bytes_read: int
    loader_wait_seconds: float
    stages: dict[str, dict[str, float]]
    workers: list[dict[str, Any]]
    resources: dict[str, Any]
    errors: dict[str, Any]
    ranks: int = 1
    #: Wall time to the first batch (worker start-up, first decodes) and the
    #: samples it held; ``steady_samples_per_second`` leaves both out.
    first_batch_seconds: float | None = None
    first_batch_samples: int = 0

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def steady_samples_per_second(self) -> float:
        """Samples/s after the first batch: the rate a long run settles at."""
        if self.first_batch_seconds is None:
            return self.samples_per_second
        seconds = self.elapsed_seconds - self.first_batch_seconds
        return (self.samples - self.first_batch_samples) / seconds if seconds > 0 else 0.0

    @property
    def bytes_per_second(self) -> float:
        return self.bytes_read / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def wait_fraction(self) -> float:
        """Share of the loop's time spent waiting for the next batch (GPU starvation)."""
        return self.loader_wait_seconds / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "elapsed_seconds": self.elapsed_seconds,
            "samples": self.samples,
            "batches": self.batches,
            "samples_per_second": self.samples_per_second,
            "steady_samples_per_second": self.steady_samples_per_second,
            "first_batch_seconds": self.first_batch_seconds,
            "bytes_read": self.bytes_read,
            "bytes_per_second": self.bytes_per_second,
            "loader_wait_seconds": self.loader_wait_seconds,
            "wait_fraction": self.wait_fraction,
            "ranks": self.ranks,
            "stages": self.stages,
            "workers": self.workers,
            "resources": self.resources,
            "errors": self.errors,
        }

    def scalars(self, prefix: str = "tali/") -> dict[str, float]:
        """Flat numbers for ``wandb.log`` / TensorBoard ``add_scalars``."""
        out = {
            f"{prefix}samples_per_second": self.samples_per_second,
            f"{prefix}bytes_per_second": self.bytes_per_second,
            f"{prefix}wait_fraction": self.wait_fraction,
            f"{prefix}rows_skipped": float(self.errors.get("skipped", 0)),
        }
        for label, stage in self.stages.items():
            out[f"{prefix}stage_ms/{label}"] = stage["mean_ms"]
        if self.resources:
            out[f"{prefix}rss_bytes"] = float(self.resources.get("rss_bytes", 0))
            out[f"{prefix}cpu_utilisation"] = float(self.resources.get("cpu_utilisation", 0.0))
        return out


@dataclass
class _WorkerTotals:
    pid: int
    samples: int = 0
    busy_ns: int = 0


class Monitor:
    """Accumulates loader statistics from batches; optionally samples resources.

    ``resources=False`` skips the psutil thread. The monitor is not thread-safe
    for :meth:`update` (call it from the training loop only); :meth:`snapshot`
    may be called from anywhere (it copies).
    """

    def __init__(self, *, resources: bool = True, interval_seconds: float = 1.0) -> None:
        self.sampler = ResourceSampler(interval_seconds=interval_seconds) if resources else None
        self.errors = ErrorReport()
        self.stage_ns = [0] * len(STAGES)
        self.stage_calls = [0] * len(STAGES)
        self.samples = 0
        self.batches = 0
        self.bytes_read = 0
        self.loader_wait_ns = 0
        self.workers: dict[tuple[int, int], _WorkerTotals] = {}
        self._t0: float | None = None
        self._t_end: float | None = None
        self._first_batch: tuple[float, int] | None = None
        self._has_errors = False

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        if self._t0 is None:
            self._t0 = time.perf_counter()
        self._t_end = None
        if self.sampler is not None:
            self.sampler.start()
        return self

    def stop(self) -> None:
        if self._t0 is not None and self._t_end is None:
            self._t_end = time.perf_counter()
        if self.sampler is not None:
            self.sampler.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- input ------------------------------------------------------------------------------

    def update(self, batch: Any) -> None:
        """Account for one collated batch: removes its ``stats`` entry (not a model
        input) and reads its ``errors`` records when the loader has a skip policy."""
        if self._t0 is None:
            self.start()
        if not isinstance(batch, Mapping):
            raise TaliConfigError(f"Monitor.update expects a batch dict, got {type(batch).__name__}")
        stats = batch.pop(STATS_KEY, None) if isinstance(batch, dict) else batch.get(STATS_KEY)
        self.batches += 1
        if stats is not None:
            before = self.samples
            self._add_stats(stats)
            if self._first_batch is None and self._t0 is not None:
                self._first_batch = (time.perf_counter() - self._t0, self.samples - before)
        if ERRORS_KEY in batch:
            self._has_errors = True
            self.errors.update(batch)

    def _add_stats(self, stats: Mapping[str, Any]) -> None:
        ns = torch.as_tensor(stats["stage_ns"]).reshape(-1, len(STAGES))
        calls = torch.as_tensor(stats["stage_calls"]).reshape(-1, len(STAGES))
        for i, (t, c) in enumerate(zip(ns.sum(0).tolist(), calls.sum(0).tolist(), strict=True)):
            self.stage_ns[i] += int(t)
            self.stage_calls[i] += int(c)
        n = ns.shape[0]
        self.samples += n
        self.bytes_read += int(torch.as_tensor(stats["bytes_read"]).sum())
        busy = ns.sum(1).tolist()
        ranks = torch.as_tensor(stats["rank"]).reshape(-1).tolist()
        workers = torch.as_tensor(stats["worker"]).reshape(-1).tolist()
        pids = torch.as_tensor(stats["pid"]).reshape(-1).tolist()
        for rank, worker, pid, b in zip(ranks, workers, pids, busy, strict=True):
            totals = self.workers.get((rank, worker))
            if totals is None or totals.pid != pid:  # a fresh worker process each epoch
                totals = self.workers.setdefault((rank, worker), _WorkerTotals(pid))
                totals.pid = pid
            totals.samples += 1
            totals.busy_ns += int(b)

    def watch(self, loader: Iterable[Any]) -> Iterator[Any]:
        """Iterate ``loader``, timing how long the loop waits for each batch, and
        :meth:`update` with every batch before handing it over."""
        if self._t0 is None:
            self.start()
        iterator = iter(loader)
        while True:
            t0 = time.perf_counter_ns()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            self.loader_wait_ns += time.perf_counter_ns() - t0
            self.update(batch)
            yield batch

    # -- output -----------------------------------------------------------------------------

    def snapshot(self) -> MonitorSnapshot:
        now = self._t_end if self._t_end is not None else time.perf_counter()
        elapsed = now - self._t0 if self._t0 is not None else 0.0
        total_ns = sum(self.stage_ns) or 1
        stages = {
            stage.label: {
                "seconds": ns / 1e9,
                "calls": calls,
                "mean_ms": ns / 1e6 / calls if calls else 0.0,
                "share": ns / total_ns,
            }
            for stage, ns, calls in zip(STAGES, self.stage_ns, self.stage_calls, strict=True)
        }
        resources = self.sampler.summary() if self.sampler is not None else {}
        usage = {p["pid"]: p for p in resources.get("processes", [])}
        workers = []
        for (rank, worker), totals in sorted(self.workers.items()):
            proc = usage.get(totals.pid, {})
            workers.append(
                {
                    "rank": rank,
                    "worker": worker,
                    "pid": totals.pid,
                    "samples": totals.samples,
                    "busy_seconds": totals.busy_ns / 1e9,
                    "rss_bytes": proc.get("rss_bytes"),
                    "peak_rss_bytes": proc.get("peak_rss_bytes"),
                    "cpu_percent": proc.get("cpu_percent"),
                    "mean_cpu_percent": proc.get("mean_cpu_percent"),
                    "num_fds": proc.get("num_fds"),
                    "peak_num_fds": proc.get("peak_num_fds"),
                }
            )
        errors = (
            self.errors.to_dict()
            if self._has_errors
            else {
                "read": self.samples,
                "yielded": self.samples,
                "substituted": 0,
                "skipped": 0,
                "by_error": {},
                "rows": [],
            }
        )
        return MonitorSnapshot(
            elapsed_seconds=elapsed,
            samples=self.samples,
            batches=self.batches,
            bytes_read=self.bytes_read,
            loader_wait_seconds=self.loader_wait_ns / 1e9,
            stages=stages,
            workers=workers,
            resources=resources,
            errors=errors,
            first_batch_seconds=self._first_batch[0] if self._first_batch else None,
            first_batch_samples=self._first_batch[1] if self._first_batch else 0,
        )

    def all_ranks(self, group: Any = None) -> MonitorSnapshot:
        """This rank's snapshot merged with every other rank's (a collective: call it
        on all ranks). Without an initialised process group, this rank's snapshot."""
        mine = self.snapshot()
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()):
            return mine
        gathered: list[Any] = [None] * dist.get_world_size(group)
        dist.all_gather_object(gathered, mine, group=group)
        return merge_snapshots(gathered)

    def panel(self) -> Any:
        """A ``rich`` renderable of the current snapshot (for ``rich.live.Live``)."""
        from tali.observe.panel import render

        return render(self.snapshot())


def merge_snapshots(snapshots: Sequence[MonitorSnapshot]) -> MonitorSnapshot:
    """Totals of several ranks: counts add, wall time is the longest rank's (ranks
    run in parallel, so samples/s of the merge is the job's throughput)."""
    if not snapshots:
        raise TaliConfigError("no snapshots to merge")
    stages: dict[str, dict[str, float]] = {}
    for snap in snapshots:
        for label, s in snap.stages.items():
            acc = stages.setdefault(label, {"seconds": 0.0, "calls": 0})
            acc["seconds"] += s["seconds"]
            acc["calls"] += s["calls"]
    total = sum(s["seconds"] for s in stages.values()) or 1.0
    for s in stages.values():
        s["mean_ms"] = s["seconds"] * 1e3 / s["calls"] if s["calls"] else 0.0
        s["share"] = s["seconds"] / total
    errors: dict[str, Any] = {
        "read": 0,
        "yielded": 0,
        "substituted": 0,
        "skipped": 0,
        "by_error": {},
        "rows": [],
    }
    for snap in snapshots:
        for key in ("read", "yielded", "substituted", "skipped"):
            errors[key] += snap.errors.get(key, 0)
        for name, count in snap.errors.get("by_error", {}).items():
            errors["by_error"][name] = errors["by_error"].get(name, 0) + count
        errors["rows"].extend(snap.errors.get("rows", []))
    resources: dict[str, Any] = {
        key: sum(s.resources.get(key, 0) for s in snapshots)
        for key in ("rss_bytes", "peak_rss_bytes", "cpu_percent", "num_fds")
    }
    resources["processes"] = [p for s in snapshots for p in s.resources.get("processes", [])]
    return MonitorSnapshot(
        elapsed_seconds=max(s.elapsed_seconds for s in snapshots),
        samples=sum(s.samples for s in snapshots),
        batches=sum(s.batches for s in snapshots),
        bytes_read=sum(s.bytes_read for s in snapshots),
        loader_wait_seconds=max(s.loader_wait_seconds for s in snapshots),
        stages=stages,
        workers=[w for s in snapshots for w in s.workers],
        resources=resources,
        errors=errors,
        ranks=sum(s.ranks for s in snapshots),
    )
