"""Select rows with a DuckDB SQL WHERE clause over metadata and metrics (video bytes are
never read), then write an index of item ids or new shards in the TALI layout.

    tali filter /data/TALI --split train --where "list_contains(languages, 'en')" --index keep.json
    tali metrics /data/TALI --split train --out m.parquet
    tali filter /data/TALI --split train --metrics m.parquet \
        --where "audio_silence_ratio < 0.5 AND frozen_frame_ratio < 0.2" --out clean/

--where sees the metadata columns (the 'rows' view) and, with --metrics, the metrics columns.
"""

from __future__ import annotations

import argparse

from tali.cli._common import positive_int

HELP = "filter rows by SQL over metadata + metrics; write an index or new shards"


def register(parser: argparse.ArgumentParser) -> None:
    from tali.cli.prepare import add_ray_argument

    parser.add_argument(
        "source",
        help="dataset directory (Hub layout), parquet file, or 'sample' (the built-in sample dataset)",
    )
    parser.add_argument("--split", required=True, help="split to filter (train, val, test)")
    parser.add_argument("--where", default=None, help="DuckDB SQL boolean expression over the 'rows' view")
    parser.add_argument("--metrics", default=None, help="metrics parquet from `tali metrics`")
    out = parser.add_mutually_exclusive_group(required=True)
    out.add_argument("--index", help="write the kept item ids as a JSON index here")
    out.add_argument("--out", help="write new shards in Hub layout under this directory")
    parser.add_argument("--rows-per-shard", type=positive_int, default=10_000, help="rows per written shard")
    parser.add_argument("--overwrite", action="store_true", help="with --out: replace shards already there")
    add_ray_argument(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from tali.cli._source import resolve_source
    from tali.outputs import check_output_apart
    from tali.quality import select

    source = resolve_source(args.source)
    # Before the scan: an output inside the source is refused without reading a row.
    if args.index:
        check_output_apart(args.index, [source], what="--index")
    else:
        check_output_apart(args.out, [source], what="--out", instead="write the new split somewhere else")
    console = Console()
    result = select(source, split=args.split, metrics=args.metrics, where=args.where)
    console.print(f"read {result.read} rows, kept {result.kept}, dropped {result.read - result.kept}")
    if args.index:
        result.write_index(args.index)
        console.print(f"index of {len(result.item_ids)} item ids -> {args.index}", markup=False)
        return 0
    summary = result.write_shards(
        args.out, rows_per_shard=args.rows_per_shard, overwrite=args.overwrite, ray=args.ray
    )
    table = Table(title="row counts")
    for column in ("file", "rows read", "rows kept / written"):
        table.add_column(column)
    for name, (read, kept) in summary.per_source.items():
        table.add_row(f"source {name}", str(read), str(kept))
    for name, rows in summary.shards.items():
        table.add_row(f"output {name}", "", str(rows))
    table.add_row("total", str(summary.read), f"{summary.kept} / {summary.written}")
    console.print(table)
    console.print(
        "[green]row counts reconcile[/green]" if summary.ok else "[red]row counts do not reconcile[/red]"
    )
    return 0 if summary.ok else 1
