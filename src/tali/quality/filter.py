"""Keep the rows you want: predicates over metadata and metrics, never over media bytes.

>>> result = select(root, split="train", metrics="metrics.parquet",
...                 where="audio_silence_ratio < 0.5 AND list_contains(languages, 'en')")
>>> result.write_index("keep.json")            # applied on the fly: TaliDataset(item_ids=...)
>>> result.write_shards("clean/")              # or new shards, exact TALI schema, Hub layout

The predicate runs in DuckDB over a view ``rows``: every shard column except
``image`` and ``youtube_video_content`` (DuckDB reads only the columns a query
names, so video bytes are never loaded), plus ``shard`` and ``row``, left-joined
with the metrics table on ``item_idx``. A Python ``predicate`` gets the same
columns as a dict per row.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tali.data.sources import SourceLike, resolve_local_files
from tali.errors import TaliConfigError, TaliSourceError
from tali.quality.runner import atomic_write_bytes
from tali.schema import TALI_SCHEMA, Column

__all__ = ["METADATA_EXCLUDED", "FilterResult", "WriteSummary", "explain", "load_index", "select"]

#: Media columns a predicate can never see.
METADATA_EXCLUDED = (str(Column.IMAGE), str(Column.YOUTUBE_VIDEO_CONTENT))
Predicate = Callable[[Mapping[str, Any]], bool]


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise TaliConfigError(
            "SQL filtering needs the quality extra: pip install 'tali-dataset[quality]'"
        ) from None
    return duckdb


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _connect(shards: Sequence[str], metrics: str | os.PathLike[str] | pa.Table | None) -> Any:
    """An in-memory DuckDB with the view ``rows`` (metadata [+ metrics])."""
    duckdb = _duckdb()
    con = duckdb.connect(":memory:")
    schema = pq.read_schema(shards[0])
    columns = [n for n in schema.names if n not in METADATA_EXCLUDED]
    files = "[" + ", ".join(_quote(s) for s in shards) + "]"
    select_list = ", ".join(f'"{c}"' for c in columns)
    con.execute(
        f"CREATE VIEW metadata AS SELECT {select_list}, parse_filename(filename) AS shard, filename AS shard_path, "
        f"file_row_number AS row FROM read_parquet({files}, filename=true, file_row_number=true)"
    )
    if metrics is None:
        con.execute("CREATE VIEW rows AS SELECT * FROM metadata")
        return con
    if isinstance(metrics, pa.Table):
        con.register("metrics_table", metrics)
        source = "metrics_table"
    else:
        if not Path(metrics).is_file():
            raise TaliSourceError(f"metrics table not found: {metrics}")
        source = f"read_parquet({_quote(str(metrics))})"
    con.execute(f"CREATE VIEW metrics AS SELECT * EXCLUDE (shard, row) FROM {source}")
    con.execute("CREATE VIEW rows AS SELECT * FROM metadata LEFT JOIN metrics USING (item_idx)")
    return con


def _check_where(con: Any, query: str) -> None:
    """One SELECT statement only: a clause cannot smuggle in a second statement."""
    duckdb = _duckdb()
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise TaliConfigError(f"cannot parse the WHERE clause: {exc}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise TaliConfigError("the WHERE clause must be a single expression (no ';' or extra statements)")


@dataclass(frozen=True)
class WriteSummary:
    """Row counts after writing shards; ``ok`` when everything reconciles."""

    read: int
    kept: int
    written: int
    shards: dict[str, int]  # output file -> rows (from its footer)
    per_source: dict[str, tuple[int, int]]  # source shard -> (rows read, rows kept)

    @property
    def ok(self) -> bool:
        return self.kept == self.written == sum(self.shards.values())


@dataclass
class FilterResult:
    """The rows a predicate kept: positions in the source shards and their ``item_idx``."""

    split: str | None
    shards: list[str]
    read: int
    #: source shard path -> sorted row numbers kept in it
    positions: dict[str, list[int]] = field(default_factory=dict)
    item_ids: list[int] = field(default_factory=list)
    where: str | None = None

    @property
    def kept(self) -> int:
        return sum(len(v) for v in self.positions.values())

    def write_index(self, path: str | os.PathLike[str]) -> Path:
        """A JSON index ``{"split", "where", "read", "kept", "item_ids"}`` for
        ``TaliDataset(item_ids=load_index(path))``."""
        blob = {
            "split": self.split,
            "where": self.where,
            "read": self.read,
            "kept": self.kept,
            "item_ids": self.item_ids,
        }
        target = Path(path)
        atomic_write_bytes(target, json.dumps(blob).encode())
        return target

    def write_shards(
        self,
        out_dir: str | os.PathLike[str],
        *,
        split: str | None = None,
        rows_per_shard: int = 10_000,
        row_group_size: int = 100,
        overwrite: bool = False,
        ray: str | bool | None = None,
    ) -> WriteSummary:
        """Copy the kept rows into ``out_dir/data/{split}-{i:05d}-of-{n:05d}.parquet``.

        The schema (with its Hub metadata) is the source's, byte for byte. Each
        shard is written under a hidden ``.partial`` name and renamed when
        complete, so a crash never leaves a file that looks like a shard. Row
        counts are read back from the new footers and reconciled. ``ray`` writes
        one output shard per Ray task (:mod:`tali.ray.filter`), byte-identical.
        """
        from tali.quality.write import write_kept_rows

        name = split or self.split
        if not name:
            raise TaliConfigError("give split= to name the output shards")
        if rows_per_shard < 1 or row_group_size < 1:
            raise TaliConfigError("rows_per_shard and row_group_size must be >= 1")
        kwargs: dict[str, Any] = {
            "split": name,
            "rows_per_shard": rows_per_shard,
            "row_group_size": row_group_size,
        }
        if ray:
            from tali.ray.filter import write_kept_rows_on_ray

            return write_kept_rows_on_ray(self, Path(out_dir), overwrite=overwrite, address=ray, **kwargs)
        return write_kept_rows(self, Path(out_dir), overwrite=overwrite, **kwargs)


def load_index(path: str | os.PathLike[str]) -> list[int]:
    """The ``item_ids`` of an index written by :meth:`FilterResult.write_index`."""
    try:
        blob = json.loads(Path(path).read_text())
        ids = blob["item_ids"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TaliSourceError(f"cannot read index {path}: {exc}") from None
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise TaliSourceError(f"index {path}: item_ids must be a list of integers")
    return ids


def select(
    source: SourceLike,
    *,
    split: str | None = None,
    metrics: str | os.PathLike[str] | pa.Table | None = None,
    where: str | None = None,
    predicate: Predicate | None = None,
) -> FilterResult:
    """Rows of ``source`` that satisfy ``where`` (DuckDB SQL) and ``predicate`` (Python).

    Both may be given (a row must pass both); neither keeps every row. A
    metrics column that is null for a row (not measured) makes SQL comparisons
    false, as SQL does.
    """
    shards = resolve_local_files(source, split)
    con = _connect(shards, metrics)
    duckdb = _duckdb()
    clause = f"WHERE ({where})" if where and where.strip() else ""
    query = f"SELECT * FROM rows {clause} ORDER BY shard_path, row"
    if clause:
        _check_where(con, query)
    try:
        read = con.sql("SELECT count(*) FROM metadata").fetchall()[0][0]
        if predicate is None:
            query = query.replace("SELECT *", "SELECT item_idx, shard_path, row", 1)
        table = con.sql(query).to_arrow_table()
    except duckdb.Error as exc:
        kind = (
            TaliConfigError
            if isinstance(exc, duckdb.BinderException | duckdb.ParserException)
            else TaliSourceError
        )
        raise kind(f"filter failed: {type(exc).__name__}: {exc}") from None
    finally:
        con.close()
    result = FilterResult(split=split, shards=shards, read=read, where=where)
    records = table.to_pylist() if predicate is not None else None
    ids = table.column("item_idx").to_pylist()
    paths = table.column("shard_path").to_pylist()
    rows = table.column("row").to_pylist()
    seen: set[tuple[str, int]] = set()
    for i, (item_idx, shard, row) in enumerate(zip(ids, paths, rows)):
        if (shard, row) in seen:
            # Only a metrics table listing one item_idx twice can repeat a row in the join.
            raise TaliSourceError(f"the metrics table lists item_idx {item_idx} more than once")
        seen.add((shard, row))
        if records is not None and not predicate(_clean(records[i])):
            continue
        result.positions.setdefault(shard, []).append(int(row))
        if item_idx is not None:
            result.item_ids.append(int(item_idx))
    return result


def explain(
    source: SourceLike,
    *,
    split: str | None = None,
    metrics: str | os.PathLike[str] | pa.Table | None = None,
    where: str | None = None,
) -> str:
    """DuckDB's physical plan for a filter: its ``Projections`` list the only
    parquet columns the predicate reads."""
    con = _connect(resolve_local_files(source, split), metrics)
    clause = f"WHERE ({where})" if where and where.strip() else ""
    query = f"SELECT item_idx, shard, row FROM rows {clause}"
    try:
        if clause:
            _check_where(con, query)
        return "\n".join(str(r[1]) for r in con.sql(f"EXPLAIN {query}").fetchall())
    finally:
        con.close()


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """NaN metrics read as None in a Python predicate, like SQL NULL."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}


def schema_matches(schema: pa.Schema) -> bool:
    """True when ``schema`` has exactly TALI's columns and types (metadata aside)."""
    return schema.remove_metadata().equals(TALI_SCHEMA)
