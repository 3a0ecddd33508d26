"""Build the sample dataset if needed, stream it through a 2-worker DataLoader with
every sub-modality, and print each output's shape and dtype and the samples/s, and, on the
sample dataset, that every streamed batch is aligned: each frame shows the code of the
frame displayed at its timestamp, each stretch of audio plays the tone of its second, and
each subtitle text is the lines of its window (read from the sample's ground truth).

    tali demo
    tali demo --monitor                       # live panel (needs the observe extra)
    tali demo --source /data/TALI --split val --workers 8 --batch-size 16
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

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


class AlignmentCheck:
    """Counts, over streamed batches, the frames, audio chunks and subtitle texts that match
    the sample dataset's ground truth (``truth.json``: frame codes, per-second tones,
    "second N" lines), the checks tests/test_alignment.py makes on single samples."""

    def __init__(self, truth: dict[int, dict]) -> None:
        self.truth = truth
        self.checked = {"frames": 0, "tones": 0, "subtitles": 0}
        self.matched = {"frames": 0, "tones": 0, "subtitles": 0}
        self.first_miss: str | None = None

    def _count(self, kind: str, ok: bool, where: str) -> None:
        self.checked[kind] += 1
        self.matched[kind] += ok
        if not ok and self.first_miss is None:
            self.first_miss = f"{kind}: {where}"

    def add(self, batch: dict) -> None:
        from tali import sample_data

        video, audio = batch["youtube_content_video"], batch["youtube_content_audio"]
        subtitles, window = batch["youtube_subtitle_text"], batch["window"]
        for b, item in enumerate(batch["item_idx"].tolist()):
            facts = self.truth[int(item)]
            t0 = float(window["start_seconds"][b])
            d = float(window["duration_seconds"][b])
            for k in range(video["frames"].shape[1]):
                if not bool(video["mask"][b, k]):
                    continue  # padding repeats the last real frame
                pts = float(video["pts_seconds"][b, k])
                want = sample_data.expected_frame_code(facts, sample_data.frame_index_at(facts, pts))
                try:
                    got: int | None = sample_data.read_frame_index(video["frames"][b, k])
                except sample_data.CodeUnreadable:
                    got = None
                self._count(
                    "frames", got == want, f"item {item} frame at {pts:.3f} s shows {got}, not {want}"
                )
            rate = (
                int(audio["sample_rate"][b])
                if hasattr(audio["sample_rate"], "__len__")
                else int(audio["sample_rate"])
            )
            for centre, second in sample_data.tone_seconds(audio["waveform"][b], rate, t0):
                # Judge a 0.25 s chunk by both ends: a chunk across a stream edge is skipped.
                ends = {
                    sample_data.expected_tone_second(facts, centre - 0.12),
                    sample_data.expected_tone_second(facts, centre + 0.12),
                }
                if len(ends) != 1 or False in ends:
                    continue
                (want_second,) = ends
                self._count(
                    "tones",
                    second == want_second,
                    f"item {item} at {centre:.2f} s plays {second}, not {want_second}",
                )
            start = float(facts["start_second"])
            lines = sample_data.expected_subtitle_lines(facts, start + t0, start + t0 + d)
            self._count(
                "subtitles",
                subtitles["text"][b] == " ".join(lines),
                f"item {item} window [{t0:.2f}, {t0 + d:.2f}] s",
            )

    @property
    def ok(self) -> bool:
        return all(self.matched[k] == self.checked[k] for k in self.checked) and self.checked["frames"] > 0

    def summary(self) -> str:
        c, m = self.checked, self.matched
        return (
            f"{m['frames']}/{c['frames']} frames show the frame displayed at their timestamp, "
            f"{m['tones']}/{c['tones']} audio chunks play their second's tone, "
            f"{m['subtitles']}/{c['subtitles']} subtitle texts are their window's lines"
        )


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
    truth_file = Path(source) / "truth.json" if isinstance(source, str | Path) else None
    check = AlignmentCheck(sample_data.load_truth(source)) if truth_file and truth_file.is_file() else None
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
                if check is not None:
                    check.add(batch)
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
    if check is None:
        return 0
    # The one thing the toolkit is for: every streamed batch is aligned with its window.
    if check.ok:
        console.print(f"[green]aligned, checked against the sample's ground truth:[/green] {check.summary()}")
        return 0
    console.print(f"[red]NOT aligned:[/red] {check.summary()}; first mismatch: {check.first_miss}")
    return 1


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)
