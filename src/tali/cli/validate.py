"""Check every row of a TALI source: schema, mp4 streams decoded across the clip,
image, subtitle YAML, WIT language lists, start time. Exits 1 when any row fails,
so it can gate a pipeline. An interrupted run with --report resumes.

    tali validate /data/TALI --split train --workers 8 --report train-report.json
    tali validate shard.parquet --checks clip,subtitles
"""

from __future__ import annotations

import argparse

from tali.cli._common import positive_int

HELP = "validate every row of a source; non-zero exit when any row fails"


def register(parser: argparse.ArgumentParser) -> None:
    from tali.cli.prepare import add_ray_argument

    parser.add_argument(
        "source",
        help="dataset directory (Hub layout), parquet file, or 'sample' (the built-in sample dataset)",
    )
    parser.add_argument("--split", default=None, help="train, val or test (default: every shard)")
    parser.add_argument("--workers", type=positive_int, default=1, help="worker processes (one shard each)")
    parser.add_argument("--report", default=None, help="write the JSON report here (enables resume)")
    parser.add_argument(
        "--checks",
        default=None,
        help="comma-separated subset of: item_idx, clip, image, subtitles, start_time, wit, texts",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_ray_argument(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tali.cli._source import resolve_source
    from tali.quality import validate

    checks = [c.strip() for c in args.checks.split(",")] if args.checks else None
    report = validate(
        resolve_source(args.source),
        split=args.split,
        checks=checks,
        workers=args.workers,
        report=args.report,
        progress=not args.no_progress,
        ray=args.ray,
    )
    console = Console()
    console.print(report.table())
    for failure in report.failures[:20]:
        console.print(
            f"  item_idx={failure.item_idx} {failure.shard}:{failure.row} [{failure.check}] "
            f"{failure.error}: {failure.message}",
            markup=False,
            highlight=False,
        )
    if len(report.failures) > 20:
        console.print(f"  ... {len(report.failures) - 20} more (see the report)")
    console.print(
        f"{report.failed_rows} of {report.rows} rows failed"
        + (f"; report: {args.report}" if args.report else "")
    )
    return 0 if report.ok else 1
