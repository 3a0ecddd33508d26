"""Write the ground-truth sample dataset (Hub layout, exact TALI schema) to PATH.

    tali sample-data                      # into the cache (where `tali demo` looks)
    tali sample-data ./sample --force     # rebuild into ./sample

24 rows; encoding takes from a few seconds to a minute (one process per core, up to 4).
"""

from __future__ import annotations

import argparse

HELP = "write the ground-truth sample dataset"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="target directory (default: the cache directory)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (another seed, other content)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a current copy exists")
    parser.add_argument("--with-thumbnail", action="store_true", help="add a youtube_thumbnail column")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tali.outputs import check_replaceable
    from tali.sample_data import build, load_truth

    if args.path is not None:  # a rebuild replaces the directory: never a dataset of the user's
        check_replaceable(args.path, marker="truth.json", what="PATH")
    with Progress(
        TextColumn("encoding sample rows"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),  # stdout keeps just the result line
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=None)
        path = build(
            args.path,
            seed=args.seed,
            force=args.force,
            with_thumbnail=args.with_thumbnail,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    truth = load_truth(path)
    size = sum(f.stat().st_size for f in path.rglob("*.parquet"))
    print(f"{path}: {len(truth)} rows, {size / 1e6:.1f} MB of parquet")
    return 0
