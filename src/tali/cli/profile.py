"""Run N samples in this process, print time per stage (stage clocks) and per
function (cProfile or pyinstrument), and say whether the loader can feed a
target rate and with how many DataLoader workers.

    tali profile sample --samples 32 --target 500/s
    tali profile /data/TALI --split train --num-frames 16 --size 336 --profiler pyinstrument --tree
"""

from __future__ import annotations

import argparse
import json

from tali.cli._common import positive_int
from tali.cli._config_args import add_config_arguments, config_from_args
from tali.cli._source import resolve_source

HELP = "where a sample's time goes (per stage and per function) and how many workers a target rate needs"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        default="sample",
        help="dataset directory or parquet file ('sample': the embedded sample dataset)",
    )
    parser.add_argument("--samples", type=positive_int, default=32, help="rows to decode in each pass")
    parser.add_argument("--target", default=None, help="rate to feed, e.g. 500/s or 30000/min")
    parser.add_argument(
        "--profiler",
        default="cprofile",
        choices=("cprofile", "pyinstrument"),
        help="per-function profiler (pyinstrument needs the observe extra)",
    )
    parser.add_argument("--top", type=positive_int, default=15, help="functions to list")
    parser.add_argument(
        "--tree", action="store_true", help="with --profiler pyinstrument: print the call tree"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="run a real DataLoader with the suggested workers and report its rate",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from tali import TaliDataset
    from tali.observe.profile import parse_rate, profile_dataset

    console = Console()
    if args.profiler == "pyinstrument":  # before the first pass, not after it
        from tali._optional import require

        require("pyinstrument", extra="observe", feature="--profiler pyinstrument")
    target = parse_rate(args.target) if args.target is not None else None
    dataset = TaliDataset(resolve_source(args.source), split=args.split, config=config_from_args(args))
    report = profile_dataset(
        dataset,
        samples=args.samples,
        target_per_second=target,
        profiler=args.profiler,
        top=args.top,
        verify=args.verify,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
        return 0
    stages = Table(
        title=f"{report.samples} samples, one worker: {report.samples_per_second_one_worker:.1f} "
        f"samples/s ({1e3 * report.wall_seconds / report.samples:.1f} ms per sample)"
    )
    for name in ("stage", "calls", "total s", "ms / call", "share"):
        stages.add_column(name, justify="left" if name == "stage" else "right")
    for label, s in sorted(report.stages.items(), key=lambda kv: -kv[1]["seconds"]):
        if s["calls"]:
            stages.add_row(
                label,
                str(int(s["calls"])),
                f"{s['seconds']:.3f}",
                f"{s['mean_ms']:.2f}",
                f"{100 * s['share']:.1f}%",
            )
    console.print(stages)
    functions = Table(title=f"top {len(report.functions)} functions by self time ({report.profiler})")
    for name in ("function", "where", "calls", "self s", "cumulative s"):
        functions.add_column(name, justify="left" if name in ("function", "where") else "right")
    for f in report.functions:
        functions.add_row(
            f["function"],
            f["where"],
            "-" if f["calls"] is None else str(f["calls"]),
            f"{f['self_seconds']:.3f}",
            "-" if f["cumulative_seconds"] is None else f"{f['cumulative_seconds']:.3f}",
        )
    console.print(functions)
    if args.tree and report.tree:
        print(report.tree)  # pyinstrument's own layout; rich would re-wrap it
    style = "green" if report.feasible or report.feasible is None else "red"
    console.print(f"[{style}]{report.verdict}[/{style}]")
    return 0
