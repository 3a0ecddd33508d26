"""Prometheus exposition of a :class:`~tali.observe.monitor.Monitor`, via ``prometheus_client``.

A custom collector reads the monitor's snapshot at scrape time, so nothing is
updated per batch. Two ways out: :func:`serve` (an HTTP ``/metrics`` endpoint on a
daemon thread) for long runs, :func:`write_textfile` for node-exporter's textfile
collector or for a file a job leaves behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from tali.observe.monitor import Monitor

__all__ = ["MonitorCollector", "current_rank", "registry_for", "serve", "write_textfile"]


def _client() -> Any:
    from tali._optional import require

    return require("prometheus_client", extra="observe", feature="Prometheus export")


Rank = int | None | Literal["auto"]


def current_rank() -> int | None:
    """This process's rank: ``torch.distributed`` when initialised, else ``$RANK``
    (set by torchrun), else ``None`` (a single-process run)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return int(dist.get_rank())
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    rank = os.environ.get("RANK")
    return int(rank) if rank not in (None, "") else None


class MonitorCollector:
    """Yields ``tali_*`` metric families from ``monitor.snapshot()`` on every collect.

    With a ``rank``, every sample carries a ``rank`` label: each rank serves (or
    writes) its own metrics, and Prometheus sums or compares them by that label.
    """

    def __init__(self, monitor: Monitor, *, rank: int | None = None) -> None:
        self.monitor = monitor
        self.rank = rank

    def describe(self) -> list[Any]:
        return []  # dynamic families: skip the registration-time collect

    def collect(self) -> Iterator[Any]:
        for family in self._families():
            if self.rank is not None:
                family.samples = [
                    s._replace(labels={**s.labels, "rank": str(self.rank)}) for s in family.samples
                ]
            yield family

    def _families(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snap = self.monitor.snapshot()
        for name, doc, value in (
            ("tali_samples", "Samples delivered to the training loop", snap.samples),
            ("tali_batches", "Batches delivered to the training loop", snap.batches),
            ("tali_read_bytes", "Bytes read from parquet for delivered samples", snap.bytes_read),
            ("tali_loader_wait_seconds", "Time the loop spent waiting for batches", snap.loader_wait_seconds),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily(
            "tali_samples_per_second", "Samples per second since start", value=snap.samples_per_second
        )
        yield GaugeMetricFamily(
            "tali_read_bytes_per_second", "Bytes read per second since start", value=snap.bytes_per_second
        )
        seconds = CounterMetricFamily(
            "tali_stage_seconds", "Time per stage, summed over workers", labels=["stage"]
        )
        calls = CounterMetricFamily("tali_stage_calls", "Calls per stage", labels=["stage"])
        for label, s in snap.stages.items():
            seconds.add_metric([label], s["seconds"])
            calls.add_metric([label], s["calls"])
        yield seconds
        yield calls
        errors = snap.errors
        by_error = CounterMetricFamily("tali_rows_skipped", "Bad rows by error class", labels=["error"])
        for name, count in sorted(errors.get("by_error", {}).items()):
            by_error.add_metric([name], count)
        yield by_error
        yield CounterMetricFamily(
            "tali_samples_substituted", "Placeholder samples served", value=errors.get("substituted", 0)
        )
        res = snap.resources
        if res:
            rss = GaugeMetricFamily(
                "tali_process_rss_bytes", "Resident memory per process", labels=["pid", "role"]
            )
            peak = GaugeMetricFamily(
                "tali_process_peak_rss_bytes", "Peak resident memory per process", labels=["pid", "role"]
            )
            cpu = GaugeMetricFamily(
                "tali_process_cpu_percent", "CPU per process (100 = one core)", labels=["pid", "role"]
            )
            fds = GaugeMetricFamily(
                "tali_process_open_fds", "Open file descriptors per process", labels=["pid", "role"]
            )
            for p in res.get("processes", []):
                if not p["alive"]:
                    continue
                labels = [str(p["pid"]), p["role"]]
                rss.add_metric(labels, p["rss_bytes"])
                peak.add_metric(labels, p["peak_rss_bytes"])
                cpu.add_metric(labels, p["cpu_percent"])
                fds.add_metric(labels, p["num_fds"])
            yield from (rss, peak, cpu, fds)
            yield GaugeMetricFamily(
                "tali_cpu_utilisation",
                "Process tree CPU over all cores (0..1)",
                value=res.get("cpu_utilisation", 0.0),
            )


def registry_for(monitor: Monitor, rank: Rank = "auto") -> Any:
    """A fresh ``CollectorRegistry`` holding only this monitor's metrics.
    ``rank="auto"`` labels them with :func:`current_rank` when there is one."""
    client = _client()
    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(monitor, rank=current_rank() if rank == "auto" else rank))
    return registry


def write_textfile(monitor: Monitor, path: str | Path, rank: Rank = "auto") -> Path:
    """Write the metrics in Prometheus text format (atomically, by prometheus_client)."""
    client = _client()
    path = Path(path)
    client.write_to_textfile(str(path), registry_for(monitor, rank))
    return path


def serve(monitor: Monitor, port: int = 0, addr: str = "127.0.0.1", rank: Rank = "auto") -> tuple[Any, int]:
    """Serve ``/metrics`` on a daemon thread. ``port=0`` picks a free port; returns
    ``(server, port)``; ``server.shutdown()`` stops it. Under torchrun give each
    rank its own port (e.g. ``9108 + local_rank``)."""
    client = _client()
    server, _thread = client.start_http_server(port, addr=addr, registry=registry_for(monitor, rank))
    return server, server.server_address[1]
