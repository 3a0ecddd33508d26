"""Shared by ``tali demo --monitor`` and ``tali bench``: stream a dataset under a
:class:`~tali.observe.Monitor` with a live ``rich`` panel and optional Prometheus export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def stream_monitored(
    console: Any,
    dataset: Any,
    *,
    epochs: int,
    loader_kwargs: Callable[[int], dict[str, Any]],
    prometheus_port: int | None = None,
    prometheus_file: str | None = None,
    title: str = "tali loader",
    refresh_per_second: float = 4.0,
) -> Any:
    """Stream ``epochs`` epochs; returns the final :class:`~tali.observe.MonitorSnapshot`."""
    from rich.live import Live

    from tali import make_loader
    from tali.observe import Monitor
    from tali.observe.panel import render
    from tali.observe.prometheus import serve, write_textfile

    monitor = Monitor(interval_seconds=0.5)
    server = None
    if prometheus_port is not None:
        server, port = serve(monitor, prometheus_port)
        console.print(f"Prometheus metrics on http://127.0.0.1:{port}/metrics")
    try:
        with (
            monitor,
            Live(
                render(monitor.snapshot(), title=title),
                console=console,
                refresh_per_second=refresh_per_second,
            ) as live,
        ):
            for epoch in range(epochs):
                dataset.set_epoch(epoch)
                for i, _batch in enumerate(monitor.watch(make_loader(dataset, **loader_kwargs(epoch)))):
                    if i == 0 and monitor.sampler is not None:
                        monitor.sampler.sample()  # workers are up now: short runs see them too
                    live.update(render(monitor.snapshot(), title=title))
            live.update(render(monitor.snapshot(), title=title))
    finally:
        if server is not None:
            server.shutdown()
    if prometheus_file:
        path = write_textfile(monitor, prometheus_file)
        console.print(f"wrote Prometheus metrics to {path}")
    return monitor.snapshot()
