"""Shared by ``tali demo --monitor`` and ``tali bench``: stream a dataset under a
:class:`~tali.observe.Monitor` with a live ``rich`` panel and optional Prometheus export."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def stream_monitored(
    console: Any,
    dataset: Any,
    args: argparse.Namespace,
    *,
    loader_kwargs: Callable[[int], dict[str, Any]],
    refresh_per_second: float = 4.0,
) -> int:
    from rich.live import Live

    from tali import make_loader
    from tali.observe import Monitor
    from tali.observe.prometheus import serve, write_textfile

    monitor = Monitor(interval_seconds=0.5)
    server = None
    if getattr(args, "prometheus_port", None) is not None:
        server, port = serve(monitor, args.prometheus_port)
        console.print(f"Prometheus metrics on http://127.0.0.1:{port}/metrics")
    try:
        with monitor, Live(monitor.panel(), console=console, refresh_per_second=refresh_per_second) as live:
            for epoch in range(args.epochs):
                dataset.set_epoch(epoch)
                for _batch in monitor.watch(make_loader(dataset, **loader_kwargs(epoch))):
                    live.update(monitor.panel())
            live.update(monitor.panel())
    finally:
        if server is not None:
            server.shutdown()
    snap = monitor.snapshot()
    if getattr(args, "prometheus_file", None):
        path = write_textfile(monitor, args.prometheus_file)
        console.print(f"wrote Prometheus metrics to {path}")
    if getattr(args, "json", False):
        console.print_json(json.dumps(snap.to_dict(), default=str))
    if snap.samples == 0:
        console.print("[red]no samples[/red]")
        return 1
    return 0
