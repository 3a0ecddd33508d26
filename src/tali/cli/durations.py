"""Write the clip-length index (``tali-durations.json``) next to a dataset's shards, so a
text-only config draws the same subtitle window a video config draws for the same seed.
One demux per clip, no decoding; run it once per dataset."""

from __future__ import annotations

import argparse

HELP = "index every clip's true length next to the shards (text-only configs use it)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="dataset directory (Hub layout) or a shard")
    parser.add_argument("--split", help="only this split (default: every parquet file)")
    parser.add_argument("--max-clip-seconds", type=float, default=600.0)


def run(args: argparse.Namespace) -> int:
    from tali.quality.durations import write_durations

    for path in write_durations(args.source, split=args.split, max_clip_seconds=args.max_clip_seconds):
        print(path)
    return 0
