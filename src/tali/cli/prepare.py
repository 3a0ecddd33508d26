"""Re-encode a TALI source for random-window training: short side 256, a keyframe every
second, audio once at 16 kHz mono. Same schema and Hub layout, so every tali tool and
loader reads the output unchanged. Resumable: rerun the same command after an interruption.
Exits 1 when any row could not be re-encoded (those rows are listed, never silently lost)."""

from __future__ import annotations

import argparse

from tali.cli._common import non_negative_int, positive_float, positive_int

HELP = "re-encode shards for training (small frames, 1 s keyframes, 16 kHz mono audio)"


def add_ray_argument(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]``: run on Ray; no address starts a local cluster (needs the ray extra)."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=None,
        metavar="ADDRESS",
        help="run as Ray tasks: a local cluster, or ADDRESS ('auto', 'ray://head:10001')",
    )


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        help="dataset directory (Hub layout), parquet file, or 'sample' (the built-in sample dataset)",
    )
    parser.add_argument("out", help="output directory (Hub layout: OUT/data/*.parquet)")
    parser.add_argument("--split", default=None, help="train, val or test (default: every shard)")
    parser.add_argument("--workers", type=positive_int, default=1, help="worker processes (one shard each)")
    add_ray_argument(parser)
    parser.add_argument(
        "--short-side", type=positive_int, default=256, help="frames scaled so their short side is this (px)"
    )
    parser.add_argument(
        "--max-fps", type=positive_float, default=30.0, help="frame rate cap (faster clips drop frames)"
    )
    parser.add_argument(
        "--keyframe-seconds", type=positive_float, default=1.0, help="a keyframe at least this often (s)"
    )
    parser.add_argument(
        "--crf", type=non_negative_int, default=23, help="x264 constant rate factor (quality)"
    )
    parser.add_argument("--preset", default="veryfast", help="x264 preset (encode speed vs size)")
    parser.add_argument(
        "--audio-rate", type=positive_int, default=16_000, help="audio sample rate (Hz), mono"
    )
    parser.add_argument("--audio-codec", default="aac", help="audio codec of the prepared clips")
    parser.add_argument("--on-error", default="keep", help="keep (copy unchanged), drop, or raise")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tali.cli._source import resolve_source
    from tali.prepare import PrepareSettings, prepare

    settings = PrepareSettings(
        short_side=args.short_side,
        max_fps=args.max_fps,
        keyframe_seconds=args.keyframe_seconds,
        crf=args.crf,
        preset=args.preset,
        audio_rate=args.audio_rate,
        audio_codec=args.audio_codec,
        on_error=args.on_error,
    )
    report = prepare(
        resolve_source(args.source),
        args.out,
        split=args.split,
        settings=settings,
        workers=args.workers,
        progress=not args.no_progress,
        ray=args.ray,
    )
    console = Console()
    summary = report.summary()
    console.print(
        f"{summary['reencoded']} of {summary['rows']} rows re-encoded into {summary['shards']} shards "
        f"({summary['written']} written); clips {summary['clip_bytes_in'] / 1e6:.1f} MB -> "
        f"{summary['clip_bytes_out'] / 1e6:.1f} MB"
        + (
            f"; {summary['rotated_upright']} display-rotated stored upright"
            if summary["rotated_upright"]
            else ""
        )
        + f"; report: {args.out}/tali-prepare.json",
        markup=False,  # a path is not rich markup
    )
    for failure in report.failures[:20]:
        console.print(
            f"  item_idx={failure.item_idx} {failure.shard}:{failure.row} [{failure.action}] "
            f"{failure.error}: {failure.message}",
            markup=False,
            highlight=False,
        )
    return 0 if report.ok else 1
