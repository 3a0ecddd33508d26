"""Build the sample dataset if needed, stream it through a 2-worker DataLoader with
every sub-modality, and print each output's shape and dtype and the samples/s.

    tali demo
    tali demo --monitor                       # live panel (needs the observe extra)
    tali demo --source /data/TALI --split val --workers 8 --batch-size 16
"""

from __future__ import annotations

import argparse
import time

from tali.cli._common import non_negative_int, positive_int

HELP = "stream aligned batches from the embedded sample dataset"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", help="dataset directory (default: build the sample dataset)")
    parser.add_argument("--split", default="train", help="split to stream (train, val, test)")
    parser.add_argument(
        "--workers", type=non_negative_int, default=2, help="DataLoader workers (0: in this process)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=4, help="samples per batch")
    parser.add_argument("--epochs", type=positive_int, default=2, help="passes over the split")
    parser.add_argument("--seed", type=int, default=0, help="root of every random choice")
    parser.add_argument(
        "--monitor",
        action="store_true",
        help="show a live panel of stage times, throughput, RSS/CPU/fds per worker and errors",
    )
    parser.add_argument(
        "--prometheus-port",
        type=int,
        default=None,
        metavar="PORT",
        help="with --monitor: serve Prometheus /metrics on 127.0.0.1:PORT while streaming",
    )
    parser.add_argument(
        "--prometheus-file",
        default=None,
        metavar="PATH",
        help="with --monitor: write the final metrics in Prometheus text format to PATH",
    )


def _flatten(batch: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in batch.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((prefix + key, value))
    return rows


def _describe(value: object) -> tuple[str, str]:
    import torch

    if isinstance(value, torch.Tensor):
        return f"[{', '.join(map(str, value.shape))}]", str(value.dtype).replace("torch.", "")
    if isinstance(value, list):
        inner = type(value[0]).__name__ if value else "?"
        return f"list[{len(value)}]", inner
    return "-", type(value).__name__


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from tali import TaliConfig, TaliDataset, make_loader, sample_data

    console = Console()
    if args.monitor:  # the panel's dependencies, before anything is built or streamed
        from tali._optional import require

        require("psutil", extra="observe", feature="tali demo --monitor")
        if args.prometheus_port is not None or args.prometheus_file:
            require("prometheus_client", extra="observe", feature="--prometheus-port/--prometheus-file")
    elif args.prometheus_port is not None or args.prometheus_file:
        from tali.cli._common import CliError

        raise CliError("--prometheus-port and --prometheus-file need --monitor")
    source = args.source
    if source is None:
        with console.status("building the sample dataset (once; cached afterwards)"):
            source = sample_data.build()
    # A clip without audio (the sample dataset has one on purpose) gives zeros, flagged `missing`.
    config = TaliConfig(seed=args.seed)
    dataset = TaliDataset(source, split=args.split, config=config, collect_stats=args.monitor)
    console.print(f"[bold]{dataset}[/bold]")
    if args.monitor:
        from tali.cli._live import stream_monitored

        snap = stream_monitored(
            console,
            dataset,
            epochs=args.epochs,
            prometheus_port=args.prometheus_port,
            prometheus_file=args.prometheus_file,
            loader_kwargs=lambda epoch: {
                "batch_size": args.batch_size,
                "num_workers": args.workers,
                "shuffle": True,
                "generator": _generator(args.seed + epoch),
            },
        )
        return 0 if snap.samples else 1
    total = len(dataset) * args.epochs
    last_batch = None
    seen = missing_audio = 0
    start = time.perf_counter()
    first_batch_at = None
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[rate]}"),
        console=console,
    ) as progress:
        task = progress.add_task("streaming", total=total, rate="")
        for epoch in range(args.epochs):
            dataset.set_epoch(epoch)
            loader = make_loader(
                dataset,
                batch_size=args.batch_size,
                num_workers=args.workers,
                shuffle=True,
                generator=_generator(args.seed + epoch),
            )
            for batch in loader:
                n = len(batch["item_idx"])
                seen += n
                missing_audio += int(batch["youtube_content_audio"]["missing"].sum())
                first_batch_at = first_batch_at or time.perf_counter()
                elapsed = time.perf_counter() - start
                progress.update(task, advance=n, rate=f"{seen / elapsed:.1f} samples/s")
                last_batch = batch
    elapsed = time.perf_counter() - start
    if last_batch is None:
        console.print("[red]no samples[/red]")
        return 1
    table = Table(title=f"one batch (batch size {args.batch_size})")
    for column in ("output", "shape", "dtype"):
        table.add_column(column)
    for key, value in _flatten(last_batch):
        table.add_row(key, *_describe(value))
    console.print(table)
    console.print(
        f"{seen} samples in {elapsed:.2f} s: [bold]{seen / elapsed:.1f} samples/s[/bold] "
        f"with {args.workers} workers (time to first batch {(first_batch_at or start) - start:.2f} s); "
        f"{missing_audio} samples had no audio stream (zeros, flagged missing)"
    )
    return 0


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)
