"""Show what a TALI split contains: distributions of languages, caption/title/description
lengths, subtitle lines (per clip and per clip second), start times and clip sizes, read from
the metadata columns only (video and image bytes are never read). Give a `tali metrics` table
with --metrics to add durations, frame rates, resolutions, loudness, silence/frozen ratios,
A/V offsets and the correlations between them.

Prints tables; --json writes the numbers as JSON (`-` for stdout), --out DIR writes
stats.json and PNG plots, --html adds DIR/report.html (one file, plots inlined).

examples:
  tali stats sample --split train                     # the bundled sample dataset
  tali stats ~/data/TALI --split train
  tali stats ~/data/TALI --split train --metrics train-metrics.parquet --out stats/ --html
  tali stats shard.parquet --json - | jq .numeric.clip_bytes.quantiles"""

from __future__ import annotations

import argparse
import sys

HELP = "distributions of a split (languages, text lengths, subtitles, clip sizes; + metrics)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "source", help="dataset directory (Hub layout: data/<split>-*.parquet) or a parquet file"
    )
    parser.add_argument("--split", default=None, help="split to describe (default: every parquet file)")
    parser.add_argument(
        "--metrics", default=None, metavar="PARQUET", help="metrics table from `tali metrics`"
    )
    parser.add_argument("--out", default=None, metavar="DIR", help="write stats.json and PNG plots here")
    parser.add_argument("--html", action="store_true", help="also write DIR/report.html (needs --out)")
    parser.add_argument(
        "--json", default=None, metavar="PATH", help="write the JSON here ('-': stdout, no tables)"
    )
    parser.add_argument("--bins", type=int, default=30, help="histogram bins (default 30)")
    parser.add_argument("--top-k", type=int, default=10, help="rows in each top-k table (default 10)")
    parser.add_argument(
        "--clip-seconds",
        type=float,
        default=30.0,
        help="clip length for 'subtitle lines in the clip' without metrics (default 30, TALI's clips)",
    )
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")


def run(args: argparse.Namespace) -> int:
    from tali.errors import TaliConfigError

    if args.html and not args.out:
        raise TaliConfigError("--html writes DIR/report.html: give --out DIR as well")
    from rich.console import Console

    from tali.cli._source import resolve_source
    from tali.outputs import check_output_apart
    from tali.stats import StatsOptions, describe, write_outputs

    options = StatsOptions(
        bins=args.bins, top_k=args.top_k, clip_seconds=args.clip_seconds, threads=args.threads
    )
    source = resolve_source(args.source)
    for flag, path in (("--out", args.out), ("--json", args.json)):
        if path and path != "-":
            check_output_apart(path, [source], what=flag)
    report = describe(source, split=args.split, metrics=args.metrics, options=options)
    to_stdout = args.json == "-"
    console = Console(stderr=to_stdout)
    if to_stdout:
        sys.stdout.write(report.to_json() + "\n")
    else:
        report.render(console)
        if args.json:
            report.to_json(args.json)
            console.print(f"JSON -> {args.json}", markup=False)
    if args.out:
        written = write_outputs(report, args.out, html=args.html)
        names = ", ".join(p.name for p in written.values())
        console.print(f"{len(written)} files -> {args.out}: {names}", markup=False)
    return 0
