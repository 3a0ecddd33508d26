"""Prometheus exposition of a :class:`~tali.observe.monitor.Monitor`, via ``prometheus_client``.

A custom collector reads the monitor's snapshot at scrape time, so nothing is
updated per batch. Two ways out: :func:`serve` (an HTTP ``/metrics`` endpoint on a
daemon thread) for long runs, :func:`write_textfile` for node-exporter's textfile
collector or for a file a job leaves behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tali.observe.monitor import Monitor

__all__ = ["MonitorCollector", "registry_for", "serve", "write_textfile"]


def _client() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - part of the observe extra
        raise ImportError("Prometheus export needs prometheus_client: pip install 'tali-dataset[observe]'") from exc
    return prometheus_client


class MonitorCollector:
    """Yields ``tali_*`` metric families from ``monitor.snapshot()`` on every collect."""

    def __init__(self, monitor: Monitor, *, rank_aware: bool = False) -> None:
        self.monitor = monitor
        self.rank_aware = rank_aware

    def describe(self) -> list[Any]:
        return []  # dynamic families: skip the registration-time collect

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snap = self.monitor.snapshot()
        for name, doc, value in (
            ("tali_samples", "Samples delivered to the training loop", snap.samples),
            ("tali_batches", "Batches delivered to the training loop", snap.batches),
            ("tali_read_bytes", "Bytes read from parquet for delivered samples", snap.bytes_read),
            ("tali_loader_wait_seconds", "Time the loop spent waiting for batches", snap.loader_wait_seconds),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily("tali_samples_per_second", "Samples per second since start",
                                value=snap.samples_per_second)
        yield GaugeMetricFamily("tali_read_bytes_per_second", "Bytes read per second since start",
                                value=snap.bytes_per_second)
        seconds = CounterMetricFamily("tali_stage_seconds", "Time per stage, summed over workers", labels=["stage"])
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
        yield CounterMetricFamily("tali_samples_substituted", "Placeholder samples served",
                                  value=errors.get("substituted", 0))
        res = snap.resources
        if res:
            rss = GaugeMetricFamily("tali_process_rss_bytes", "Resident memory per process", labels=["pid", "role"])
            peak = GaugeMetricFamily("tali_process_peak_rss_bytes", "Peak resident memory per process",
                                     labels=["pid", "role"])
            cpu = GaugeMetricFamily("tali_process_cpu_percent", "CPU per process (100 = one core)",
                                    labels=["pid", "role"])
            fds = GaugeMetricFamily("tali_process_open_fds", "Open file descriptors per process",
                                    labels=["pid", "role"])
            for p in res.get("processes", []):
                if not p["alive"]:
                    continue
                labels = [str(p["pid"]), p["role"]]
                rss.add_metric(labels, p["rss_bytes"])
                peak.add_metric(labels, p["peak_rss_bytes"])
                cpu.add_metric(labels, p["cpu_percent"])
                fds.add_metric(labels, p["num_fds"])
            yield from (rss, peak, cpu, fds)
            yield GaugeMetricFamily("tali_cpu_utilisation", "Process tree CPU over all cores (0..1)",
                                    value=res.get("cpu_utilisation", 0.0))


def registry_for(monitor: Monitor) -> Any:
    """A fresh ``CollectorRegistry`` holding only this monitor's metrics."""
    client = _client()
    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(monitor))
    return registry


def write_textfile(monitor: Monitor, path: str | Path) -> Path:
    """Write the metrics in Prometheus text format (atomically, by prometheus_client)."""
    client = _client()
    path = Path(path)
    client.write_to_textfile(str(path), registry_for(monitor))
    return path


def serve(monitor: Monitor, port: int = 0, addr: str = "127.0.0.1") -> tuple[Any, int]:
    """Serve ``/metrics`` on a daemon thread. ``port=0`` picks a free port; returns
    ``(server, port)``; ``server.shutdown()`` stops it."""
    client = _client()
    server, _thread = client.start_http_server(port, addr=addr, registry=registry_for(monitor))
    return server, server.server_address[1]
