"""Compute per-row quality metrics (video, audio, sync, text, cross-modal agreement)
in one decode pass and store them as a parquet table keyed by item_idx.

    tali metrics /data/TALI --split val --out val-metrics.parquet --workers 8
    tali metrics sample.parquet --out m.parquet --similarity     # needs the embeddings extra

Use the table in `tali filter --metrics FILE --where SQL`.
"""

from __future__ import annotations

import argparse

from tali.cli._common import positive_int

HELP = "per-row quality metrics as a parquet table keyed by item_idx"


def register(parser: argparse.ArgumentParser) -> None:
    from tali.cli.prepare import add_ray_argument

    parser.add_argument(
        "source",
        help="dataset directory (Hub layout), parquet file, or 'sample' (the built-in sample dataset)",
    )
    parser.add_argument("--split", default=None, help="train, val or test (default: every shard)")
    parser.add_argument("--out", required=True, help="output parquet file")
    parser.add_argument("--workers", type=positive_int, default=1, help="worker processes (one shard each)")
    parser.add_argument(
        "--similarity",
        action="store_true",
        help="title vs Wikipedia title/caption similarity (needs the embeddings extra)",
    )
    parser.add_argument("--language", default="en", help="caption language when the row has it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_ray_argument(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tali._optional import available, install_hint
    from tali.cli._source import resolve_source
    from tali.quality import MetricsOptions, compute_metrics
    from tali.quality.metrics import summarize_metrics

    sql = available("duckdb")  # the summary's flag counts; the table itself needs no extra
    options = MetricsOptions(similarity=args.similarity, language=args.language)
    table = compute_metrics(
        resolve_source(args.source),
        split=args.split,
        out=args.out,
        options=options,
        workers=args.workers,
        progress=not args.no_progress,
        ray=args.ray,
    )
    # The summary (80-column friendly, notebook form too) lives with the metrics: tali.quality.metrics.
    summarize_metrics(table, out=args.out, flag_counts=sql).render(Console())
    errors = sum(1 for e in table.column("errors").to_pylist() if e)
    if not sql:
        # Not markup: rich would read "[quality]" as a style tag and print "tali-dataset".
        Console().print(f"flagged counts need duckdb: {install_hint('quality')}", markup=False)
    Console().print(f"{errors} rows had parts that could not be measured (see the 'errors' column)")
    return 0


def _count(table, rule: str) -> int:
    import duckdb

    con = duckdb.connect()
    con.register("metrics", table)
    try:
        return con.sql(f"SELECT count(*) FROM metrics WHERE {rule}").fetchall()[0][0]
    finally:
        con.close()
