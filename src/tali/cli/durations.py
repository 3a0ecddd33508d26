"""Write the clip-length index (``tali-durations.json``) next to a dataset's shards, so a
text-only config draws the same subtitle window a video config draws for the same seed.
One demux per clip, no decoding; run it once per dataset."""

from __future__ import annotations

import argparse

from tali.cli._common import positive_float

HELP = "index every clip's true length next to the shards (text-only configs use it)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        help="dataset directory (Hub layout), parquet file, or 'sample' (the built-in sample dataset)",
    )
    parser.add_argument("--split", help="only this split (default: every parquet file)")
    parser.add_argument(
        "--max-clip-seconds",
        type=positive_float,
        default=600.0,
        help="clips whose frames span longer are left out of the index (the nominal length is used)",
    )


def run(args: argparse.Namespace) -> int:
    from tali.cli._source import resolve_source
    from tali.quality.durations import write_durations

    for path in write_durations(
        resolve_source(args.source), split=args.split, max_clip_seconds=args.max_clip_seconds
    ):
        print(path)
    return 0
