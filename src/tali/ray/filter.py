"""``tali filter --out`` on Ray: one task per output shard, files identical to the local writer's.

The local writer (:mod:`tali.quality.write`) streams source row groups into
shards rolled every ``rows_per_shard`` kept rows. Here the same cut is planned
up front (the kept count is known), so output shard ``i`` is one task that
makes exactly the local writer's ``write_table`` calls for its rows: same row
groups, same bytes. Each task writes ``.name.partial`` and renames it, so a
retried task (its worker killed) redoes one shard; if the run fails, every
shard it finished is removed with the staging directory (all or nothing, as locally).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from tali.atomic import publishing
from tali.errors import TaliSourceError
from tali.quality.write import read_rows
from tali.ray._backend import connect
from tali.ray.jobs import MAX_RETRIES

if TYPE_CHECKING:
    from tali.quality.filter import FilterResult, WriteSummary

__all__ = ["ray_copy"]

#: Per output shard: (source shard, row group, offsets in the group) in write order.
_Plan = list[tuple[str, int, list[int]]]


def _plan(result: FilterResult, rows_per_shard: int) -> tuple[list[_Plan], dict[str, tuple[int, int]], int]:
    plans: list[_Plan] = [[] for _ in range(max(1, math.ceil(result.kept / rows_per_shard)))]
    per_source: dict[str, tuple[int, int]] = {}
    read = kept = 0
    for shard in result.shards:
        wanted = result.positions.get(shard, [])
        meta = pq.ParquetFile(shard).metadata
        per_source[Path(shard).name] = (meta.num_rows, len(wanted))
        read += meta.num_rows
        if wanted and (wanted[0] < 0 or wanted[-1] >= meta.num_rows):
            raise TaliSourceError(
                f"kept row {wanted[-1]} is not in {Path(shard).name} ({meta.num_rows} rows)"
            )
        first, k = 0, 0
        for group in range(meta.num_row_groups):
            count = meta.row_group(group).num_rows
            while k < len(wanted) and wanted[k] < first + count:
                # Offsets of this group that go to the same output shard, as one piece.
                index = kept // rows_per_shard
                room = (index + 1) * rows_per_shard - kept
                piece: list[int] = []
                while k < len(wanted) and wanted[k] < first + count and len(piece) < room:
                    piece.append(wanted[k] - first)
                    k += 1
                plans[index].append((shard, group, piece))
                kept += len(piece)
            first += count
    return plans, per_source, read


def _write_shard(plan: _Plan, path: str, schema: pa.Schema, row_group_size: int) -> int:
    final = Path(path)
    partial = final.with_name(f".{final.name}.partial")
    files: dict[str, pq.ParquetFile] = {}
    with publishing(partial, final), pq.ParquetWriter(partial, schema) as writer:
        for shard, group, offsets in plan:
            handle = files.setdefault(shard, pq.ParquetFile(shard))
            table = read_rows(handle, shard, group, offsets)
            writer.write_table(table.cast(schema), row_group_size=row_group_size)
    return pq.ParquetFile(final).metadata.num_rows


def ray_copy(
    result: FilterResult,
    staging: Path,
    schema: pa.Schema,
    split: str,
    rows_per_shard: int,
    row_group_size: int,
    summary_type: type[WriteSummary],
    *,
    address: str | bool = True,
) -> WriteSummary:
    """The ``copy`` step of :func:`tali.quality.write.write_kept_rows` as Ray tasks: fills
    ``staging`` with the output shards; the caller's lock, checks and one-rename publish
    are unchanged (a failed run leaves the old split whole)."""
    plans, per_source, read = _plan(result, rows_per_shard)
    names = [f"{split}-{i:05d}-of-{len(plans):05d}.parquet" for i in range(len(plans))]
    ray = connect(address)
    task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(_write_shard)
    schema_ref = ray.put(schema)
    refs = [
        task.remote(plan, str(Path(staging) / name), schema_ref, row_group_size)
        for plan, name in zip(plans, names)
    ]
    try:
        counts = ray.get(refs)
    except BaseException as exc:
        # Whatever failed (a task, a worker past its retries, Ray itself, ^C): stop every task
        # and wait for them, so none writes into the staging directory the caller now removes.
        for ref in refs:
            ray.cancel(ref, force=True)
        ray.wait(refs, num_returns=len(refs), timeout=30)
        if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, BaseException):
            raise exc.cause from None
        raise
    shards = dict(zip(names, counts))
    summary = summary_type(
        read=read, kept=result.kept, written=sum(counts), shards=shards, per_source=per_source
    )
    if not summary.ok:
        raise TaliSourceError(f"row counts do not reconcile: kept {result.kept}, written {summary.written}")
    return summary
