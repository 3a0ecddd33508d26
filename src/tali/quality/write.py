"""Write kept rows as new parquet shards in the exact TALI schema and Hub layout.

Rows are copied a source row group at a time (``take`` of the kept offsets),
so memory is one row group plus one output row group, whatever the split's
size. Output shards are named ``data/{split}-{i:05d}-of-{n:05d}.parquet`` with
``n`` known up front (the kept count is).

Nothing the user owns is lost or seen half-written:

- an output that is, contains or lies inside a source is refused before
  anything is touched (``tali filter SRC --out SRC --overwrite`` used to delete
  the source split before reading it);
- the new ``data/`` directory is staged beside the old one (other splits carried
  over as hard links, so no copy) and published with one rename
  (:func:`tali.atomic.publish_dir`): a reader sees the old split or the new
  one, and a writer killed at any point (even ``kill -9``) leaves the old
  ``data/`` as it was plus a hidden staging directory that the next write
  removes;
- writers of one output take turns (:func:`tali.atomic.exclusive`).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from tali.atomic import exclusive, publish_dir, publishing, remove_stale, staging_dir
from tali.errors import TaliSourceError
from tali.outputs import check_output_apart

if TYPE_CHECKING:
    from tali.jobs import Executor
    from tali.quality.filter import FilterResult, WriteSummary

__all__ = ["check_output_is_apart", "planned_copy", "read_rows", "write_kept_rows"]


class _ShardWriter:
    """Rolls output shards every ``rows_per_shard`` rows inside the staging directory."""

    def __init__(
        self,
        data_dir: Path,
        split: str,
        total_shards: int,
        schema: pa.Schema,
        rows_per_shard: int,
        row_group_size: int,
    ) -> None:
        self.data_dir, self.split, self.total = data_dir, split, total_shards
        self.schema, self.rows_per_shard, self.row_group_size = schema, rows_per_shard, row_group_size
        self.index = 0
        self.rows_in_shard = 0
        self.writer: pq.ParquetWriter | None = None
        self.finished: list[Path] = []

    def _path(self) -> Path:
        return self.data_dir / f"{self.split}-{self.index:05d}-of-{self.total:05d}.parquet"

    def _open(self) -> None:
        self.writer = pq.ParquetWriter(self._path(), self.schema)

    def _close(self) -> None:
        assert self.writer is not None
        self.writer.close()
        self.finished.append(self._path())
        self.writer = None
        self.index += 1
        self.rows_in_shard = 0

    def write(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            if self.writer is None:
                self._open()
            assert self.writer is not None
            take = min(table.num_rows - start, self.rows_per_shard - self.rows_in_shard)
            self.writer.write_table(table.slice(start, take), row_group_size=self.row_group_size)
            self.rows_in_shard += take
            start += take
            if self.rows_in_shard == self.rows_per_shard:
                self._close()

    def finish(self) -> list[Path]:
        if self.writer is not None:
            self._close()
        if not self.finished:  # nothing kept: one empty shard keeps the split discoverable
            self._open()
            self._close()
        return self.finished

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def check_output_is_apart(out_dir: Path, sources: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse an output directory that is, contains or lies inside a source directory."""
    check_output_apart(out_dir, sources, instead="write the new split somewhere else")


def _carry_over(data_dir: Path, staging: Path, replaced: set[Path]) -> None:
    """Everything else in ``data/`` (other splits) goes into the staging tree as hard links."""
    if not data_dir.is_dir():
        return
    for entry in data_dir.iterdir():
        if entry in replaced or entry.name.startswith("."):
            continue
        if entry.is_dir():
            shutil.copytree(entry, staging / entry.name, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, staging / entry.name)


def _link_or_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links: copy
        shutil.copy2(src, dst)


def write_kept_rows(
    result: FilterResult,
    out_dir: Path,
    *,
    split: str,
    rows_per_shard: int,
    row_group_size: int,
    overwrite: bool,
    copy: Callable[..., WriteSummary] | None = None,
) -> WriteSummary:
    """``copy`` fills the staging directory (default: this process, streaming; :func:`planned_copy`
    runs one task per output shard on an executor). Checks, lock, staging and publish stay here."""
    from tali.quality.filter import WriteSummary
    from tali.schema import schema_matches

    out_dir = Path(out_dir).resolve()
    roots = {Path(p).resolve().parent for p in result.shards} | {
        Path(r).resolve() for r in result.source_roots
    }
    check_output_is_apart(out_dir, roots)
    data_dir = out_dir / "data"
    with exclusive(data_dir):
        remove_stale(out_dir, ".data.staging-")  # left by a writer that was killed
        remove_stale(out_dir, ".data.old-")
        existing = sorted(data_dir.glob(f"{split}-*.parquet")) if data_dir.is_dir() else []
        if existing and not overwrite:
            raise TaliSourceError(
                f"{data_dir} already has {split} shards ({existing[0].name}, ...); pass overwrite=True"
            )
        schema = pq.read_schema(result.shards[0])  # keeps the HF features metadata
        if not schema_matches(schema):
            raise TaliSourceError(
                f"{result.shards[0]} does not have the TALI schema; refusing to write shards"
            )
        staging = staging_dir(data_dir)
        try:
            _carry_over(data_dir, staging, set(existing))
            summary = (copy or _copy)(
                result, staging, schema, split, rows_per_shard, row_group_size, WriteSummary
            )
            publish_dir(staging, data_dir)  # the old split stays whole until this one rename
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return summary


def read_rows(handle: pq.ParquetFile, shard: str, group: int, offsets: list[int]) -> pa.Table:
    """Rows ``offsets`` of row group ``group``; a broken page is a :class:`TaliSourceError`
    naming the shard and group (Arrow's own error names neither)."""
    try:
        return handle.read_row_group(group).take(pa.array(offsets, pa.int64()))
    except (OSError, pa.ArrowException) as exc:
        raise TaliSourceError(f"cannot read row group {group} of {Path(shard).name}: {exc}") from None


def _copy(result, staging, schema, split, rows_per_shard, row_group_size, summary_type) -> WriteSummary:
    kept = result.kept
    total_shards = max(1, math.ceil(kept / rows_per_shard))
    writer = _ShardWriter(staging, split, total_shards, schema, rows_per_shard, row_group_size)
    per_source: dict[str, tuple[int, int]] = {}
    read = 0
    try:
        for shard in result.shards:
            wanted = result.positions.get(shard, [])
            handle = pq.ParquetFile(shard)
            rows = handle.metadata.num_rows
            per_source[Path(shard).name] = (rows, len(wanted))
            read += rows
            if wanted and (wanted[0] < 0 or wanted[-1] >= rows):
                raise TaliSourceError(f"kept row {wanted[-1]} is not in {Path(shard).name} ({rows} rows)")
            first = 0
            k = 0
            for group in range(handle.num_row_groups):
                count = handle.metadata.row_group(group).num_rows
                offsets = []
                while k < len(wanted) and wanted[k] < first + count:
                    offsets.append(wanted[k] - first)
                    k += 1
                if offsets:
                    table = read_rows(handle, shard, group, offsets)
                    writer.write(table.cast(schema))
                first += count
        files = writer.finish()
    finally:
        writer.close()
    shards = {f.name: pq.ParquetFile(f).metadata.num_rows for f in files}
    summary = summary_type(
        read=read, kept=kept, written=sum(shards.values()), shards=shards, per_source=per_source
    )
    if not summary.ok:
        raise TaliSourceError(
            f"row counts do not reconcile: kept {kept}, written {summary.written} ({shards})"
        )
    return summary


#: Per output shard: (source shard, row group, offsets in the group) in write order.
_Plan = list[tuple[str, int, list[int]]]


def _plan(result: FilterResult, rows_per_shard: int) -> tuple[list[_Plan], dict[str, tuple[int, int]], int]:
    """The streaming writer's cut, planned up front (the kept count is known): output shard
    ``i`` gets exactly the pieces, in order, that :func:`_copy` would write into it."""
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


def _write_planned_shard(plan: _Plan, path: str, schema: pa.Schema, row_group_size: int) -> int:
    """One output shard, the same ``write_table`` calls the streaming writer makes (same bytes);
    written as its ``.partial`` and renamed, so a retried task redoes exactly one shard."""
    final = Path(path)
    partial = final.with_name(f".{final.name}.partial")
    files: dict[str, pq.ParquetFile] = {}
    with publishing(partial, final), pq.ParquetWriter(partial, schema) as writer:
        for shard, group, offsets in plan:
            handle = files.setdefault(shard, pq.ParquetFile(shard))
            table = read_rows(handle, shard, group, offsets)
            writer.write_table(table.cast(schema), row_group_size=row_group_size)
    return pq.ParquetFile(final).metadata.num_rows


def planned_copy(executor: Executor) -> Callable[..., WriteSummary]:
    """A ``copy`` for :func:`write_kept_rows` that writes each output shard as one task on
    ``executor`` (Ray: ``executor_for("ray")``); byte-identical to the streaming writer's."""

    def copy(result, staging, schema, split, rows_per_shard, row_group_size, summary_type) -> WriteSummary:
        plans, per_source, read = _plan(result, rows_per_shard)
        names = [f"{split}-{i:05d}-of-{len(plans):05d}.parquet" for i in range(len(plans))]
        counts = executor.map(
            _write_planned_shard,
            [(plan, str(Path(staging) / name), schema, row_group_size) for plan, name in zip(plans, names)],
        )
        summary = summary_type(
            read=read,
            kept=result.kept,
            written=sum(counts),
            shards=dict(zip(names, counts)),
            per_source=per_source,
        )
        if not summary.ok:
            raise TaliSourceError(
                f"row counts do not reconcile: kept {result.kept}, written {summary.written}"
            )
        return summary

    return copy
