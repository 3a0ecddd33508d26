"""Measure ``tali``'s own throughput on a source and config, per number of
DataLoader workers, with the live monitor panel; print a table or JSON.

    tali bench sample --workers 1 2 --epochs 3
    tali bench /data/TALI --split val --num-frames 16 --size 336 --workers 4 8 --json

The full comparison against the decode-only floor and the peers (torchcodec,
HF datasets, a naive loader) is ``benchmarks/run_all.py`` in the repository.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tali.cli._common import non_negative_int, positive_int
from tali.cli._config_args import add_config_arguments, config_from_args
from tali.cli._source import resolve_source

HELP = "throughput of tali on a source and config, per worker count, with a live monitor panel"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        default="sample",
        help="dataset directory or parquet file ('sample': the embedded sample dataset)",
    )
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        nargs="+",
        default=[1, 2],
        metavar="N",
        help="DataLoader worker counts to measure, one run each (0: in this process)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=4, help="samples per batch")
    parser.add_argument("--epochs", type=positive_int, default=2, help="passes over the split per run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--prometheus-file",
        default=None,
        metavar="PATH",
        help="write the last run's metrics in Prometheus text format to PATH",
    )
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tali import TaliDataset

    console = Console(stderr=args.json)
    dataset = TaliDataset(
        resolve_source(args.source), split=args.split, config=config_from_args(args), collect_stats=True
    )
    results = []
    for workers in args.workers:
        snap = _stream(console, dataset, args, workers)
        busiest = max(snap.stages, key=lambda k: snap.stages[k]["seconds"])
        results.append(
            {
                "workers": workers,
                "samples": snap.samples,
                "seconds": snap.elapsed_seconds,
                "samples_per_second": snap.samples_per_second,
                "steady_samples_per_second": snap.steady_samples_per_second,
                "first_batch_seconds": snap.first_batch_seconds,
                "bytes_per_second": snap.bytes_per_second,
                "wait_fraction": snap.wait_fraction,
                "peak_rss_bytes": snap.resources.get("peak_rss_bytes"),
                "mean_cpu_utilisation": snap.resources.get("mean_cpu_utilisation"),
                "busiest_stage": busiest,
                "stages": snap.stages,
            }
        )
    base = results[0]["samples_per_second"] or 1.0
    for r in results:
        r["speedup_vs_first"] = r["samples_per_second"] / base
    if args.json:
        print(
            json.dumps(
                {"config": dataset.config.to_dict(), "rows": len(dataset), "results": results},
                indent=2,
                default=str,
            )
        )
        return 0
    console.print(
        results_table(
            results, f"tali bench: {len(dataset)} rows x {args.epochs} epochs, batch size {args.batch_size}"
        )
    )
    return 0


#: Short headers so the table fits 80 columns; the caption says what they mean.
_COLUMNS = ("workers", "samples/s", "steady/s", "1st s", "speed-up", "MiB/s", "RSS MiB", "CPU", "busiest")
_CAPTION = (
    "steady/s: after the first batch; 1st s: time to the first batch; speed-up: vs the first row; "
    "MiB/s: parquet bytes read; RSS: peak of the process tree; CPU: mean use of all cores; "
    "busiest: the stage with the most time"
)


def results_table(results: list[dict], title: str) -> Any:
    """One row per worker count (a ``rich`` table)."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, caption=_CAPTION, box=box.SIMPLE_HEAD, padding=(0, 0))
    for name in _COLUMNS:
        table.add_column(name, justify="left" if name == "busiest" else "right", no_wrap=True)
    for r in results:
        table.add_row(
            str(r["workers"]),
            f"{r['samples_per_second']:.1f}",
            f"{r['steady_samples_per_second']:.1f}",
            f"{r['first_batch_seconds'] or 0:.2f}",
            f"x{r['speedup_vs_first']:.2f}",
            f"{r['bytes_per_second'] / 2**20:.1f}",
            f"{(r['peak_rss_bytes'] or 0) / 2**20:.0f}",
            f"{100 * (r['mean_cpu_utilisation'] or 0):.0f}%",
            r["busiest_stage"],
        )
    return table


def _stream(console, dataset, args, workers):
    from tali.cli._live import stream_monitored

    return stream_monitored(
        console,
        dataset,
        epochs=args.epochs,
        prometheus_file=args.prometheus_file,
        title=f"tali bench: {workers} worker(s)",
        loader_kwargs=lambda epoch: {
            "batch_size": args.batch_size,
            "num_workers": workers,
            "persistent_workers": False,
        },
    )
