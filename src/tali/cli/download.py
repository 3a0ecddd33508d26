"""Download shards of TALI from the Hugging Face Hub (only the split and shards asked
for), verify them against the Hub's sizes and sha256, and print where they are.
A second run downloads nothing; an interrupted run continues where it stopped.

    tali download --split 'train[:5%]' --workers 8            # into the HF cache
    tali download --split val --local-dir /data/TALI          # Hub layout in a directory
    tali download --split train --shard 0 --shard 3 --json    # explicit shards, JSON report

With HF_HUB_OFFLINE=1 nothing is requested: shards already downloaded are listed, or it
fails at once. An unreachable Hub fails within --timeout seconds, without retries.
"""

from __future__ import annotations

import argparse
import json

from tali.cli._common import positive_float, positive_int

HELP = "download (a slice of) a TALI split from the Hub, verified and resumable"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo_id", nargs="?", default="Antreas/TALI", help="Hub dataset repo (owner/name)")
    parser.add_argument("--split", default="train", help="e.g. train, 'train[:5%%]', 'val[0:2]'")
    parser.add_argument(
        "--shard",
        action="append",
        dest="shards",
        metavar="INDEX_OR_NAME",
        help="one shard (index in the split or file name); repeat for several",
    )
    parser.add_argument("--revision", help="branch, tag or commit (default: main)")
    parser.add_argument("--cache-dir", help="Hugging Face cache directory (default: HF_HUB_CACHE)")
    parser.add_argument("--local-dir", help="write the Hub layout here instead of the HF cache")
    parser.add_argument("--workers", type=positive_int, default=8, help="parallel downloads")
    parser.add_argument(
        "--verify",
        choices=("size", "sha256"),
        default="sha256",
        help="check each shard's size, or size + hash",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        help="seconds a Hub metadata call may take before the Hub counts as unreachable",
    )
    parser.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    parser.add_argument("--json", action="store_true", help="print a JSON report instead of a summary")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tali.hub import download

    shards = [int(s) if s.lstrip("-").isdigit() else s for s in args.shards] if args.shards else None
    report = download(
        args.repo_id,
        split=args.split,
        shards=shards,
        revision=args.revision,
        cache_dir=args.cache_dir,
        local_dir=args.local_dir,
        max_workers=args.workers,
        verify=args.verify,
        endpoint=args.endpoint,
        timeout=args.timeout,
        progress=not (args.quiet or args.json),
    )
    if args.json:
        print(
            json.dumps(
                {
                    "commit": report.commit,
                    "files": report.files,
                    "refetched": report.refetched,
                    "downloaded_bytes": report.downloaded_bytes,
                },
                indent=2,
            )
        )
    else:
        print(
            f"{len(report.files)} shards of {args.repo_id}@{report.commit[:12]} "
            f"({report.downloaded_bytes / 1e6:.1f} MB downloaded now)"
        )
        for path in report.files:
            print(path)
    return 0
