"""Write kept rows as new parquet shards in the exact TALI schema and Hub layout.

Rows are copied a source row group at a time (``take`` of the kept offsets),
so memory is one row group plus one output row group, whatever the split's
size. Output shards are named ``data/{split}-{i:05d}-of-{n:05d}.parquet`` with
``n`` known up front (the kept count is), written as ``.partial`` files and
renamed once their footer is on disk; if the run fails, the shards it already
finished are removed too, so a split is either complete or absent.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from tali.errors import TaliSourceError

if TYPE_CHECKING:
    from tali.quality.filter import FilterResult, WriteSummary

__all__ = ["write_kept_rows"]


class _ShardWriter:
    """Rolls output shards every ``rows_per_shard`` rows, each atomically renamed."""

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
        self.partial: Path | None = None
        self.finished: list[Path] = []

    def _name(self) -> str:
        return f"{self.split}-{self.index:05d}-of-{self.total:05d}.parquet"

    def _open(self) -> None:
        self.partial = self.data_dir / f".{self._name()}.partial"
        self.writer = pq.ParquetWriter(self.partial, self.schema)

    def _close(self) -> None:
        assert self.writer is not None and self.partial is not None
        self.writer.close()
        final = self.data_dir / self._name()
        os.replace(self.partial, final)
        self.finished.append(final)
        self.writer, self.partial = None, None
        self.index += 1
        self.rows_in_shard = 0

    def write(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            if self.writer is None:
                self._open()
            assert self.writer is not None  # _open set it
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

    def abort(self) -> None:
        """A failed run leaves nothing that looks like a shard: the open ``.partial``
        and the shards this run already finished are removed (all or nothing)."""
        if self.writer is not None:
            self.writer.close()
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)
        for path in self.finished:
            path.unlink(missing_ok=True)


def write_kept_rows(
    result: FilterResult,
    out_dir: Path,
    *,
    split: str,
    rows_per_shard: int,
    row_group_size: int,
    overwrite: bool,
) -> WriteSummary:
    from tali.quality.filter import WriteSummary, schema_matches

    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    existing = sorted(data_dir.glob(f"{split}-*.parquet"))
    if existing and not overwrite:
        raise TaliSourceError(
            f"{data_dir} already has {split} shards ({existing[0].name}, ...); pass overwrite=True"
        )
    schema = pq.read_schema(result.shards[0])  # keeps the HF features metadata
    if not schema_matches(schema):
        raise TaliSourceError(f"{result.shards[0]} does not have the TALI schema; refusing to write shards")
    kept = result.kept
    total_shards = max(1, math.ceil(kept / rows_per_shard))
    for path in existing:
        path.unlink()
    writer = _ShardWriter(data_dir, split, total_shards, schema, rows_per_shard, row_group_size)
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
                    table = handle.read_row_group(group).take(pa.array(offsets, pa.int64()))
                    writer.write(table.cast(schema))
                first += count
        files = writer.finish()
        shards = {f.name: pq.ParquetFile(f).metadata.num_rows for f in files}
        summary = WriteSummary(
            read=read, kept=kept, written=sum(shards.values()), shards=shards, per_source=per_source
        )
        if not summary.ok:
            raise TaliSourceError(
                f"row counts do not reconcile: kept {kept}, written {summary.written} ({shards})"
            )
    except BaseException:
        writer.abort()
        raise
    return summary
