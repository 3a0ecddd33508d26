"""Write the ground-truth sample dataset (Hub layout, exact TALI schema) to PATH."""

from __future__ import annotations

import argparse

HELP = "write the ground-truth sample dataset"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="target directory (default: the cache directory)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even if a current copy exists")
    parser.add_argument("--with-thumbnail", action="store_true", help="add a youtube_thumbnail column")


def run(args: argparse.Namespace) -> int:
    from tali.sample_data import build, load_truth

    path = build(args.path, seed=args.seed, force=args.force, with_thumbnail=args.with_thumbnail)
    truth = load_truth(path)
    size = sum(f.stat().st_size for f in path.rglob("*.parquet"))
    print(f"{path}: {len(truth)} rows, {size / 1e6:.1f} MB of parquet")
    return 0
