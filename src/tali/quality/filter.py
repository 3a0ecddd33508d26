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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tali.atomic import write_bytes as atomic_write_bytes
from tali.data.sources import SourceLike, resolve_local_files
from tali.errors import TaliConfigError, TaliSourceError
from tali.outputs import check_output_apart
from tali.sql.sandbox import METADATA_EXCLUDED, SandboxLimits, evaluate_where, explain_where

__all__ = ["METADATA_EXCLUDED", "FilterResult", "WriteSummary", "explain", "load_index", "select"]

Predicate = Callable[[Mapping[str, Any]], bool]


def _where_hint(exc: Exception, metrics: object) -> str | None:
    """DuckDB's "column not found", said in terms of tali's two tables."""
    match = re.search(r'column "?([A-Za-z_][\w]*)"? not found', str(exc), re.IGNORECASE)
    if match is None:
        return None
    from tali.quality.metrics import METRICS_COLUMNS

    column = match[1]
    if column in METRICS_COLUMNS and metrics is None:
        return (
            f"--where uses {column!r}, a column of the metrics table: compute it with `tali metrics` "
            f"and pass it (metrics=FILE, or --metrics FILE on the command line)"
        )
    return f"--where uses {column!r}, which is neither a metadata nor a metrics column: {' '.join(str(exc).split())}"


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
    #: the directories the shards were resolved from (an output may not overlap them)
    source_roots: list[str] = field(default_factory=list)

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
        check_output_apart(target, [*self.source_roots, *self.shards], what="the index")
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

        The schema (with its Hub metadata) is the source's, byte for byte. The
        new ``data/`` is staged and published with one rename, so a reader (or
        a crash) never sees part of a split; an ``out_dir`` that is, contains
        or lies inside a source is refused. Row counts are read back from the
        new footers and reconciled. ``ray`` writes one output shard per Ray task
        (the ``"ray"`` executor of :mod:`tali.jobs`), byte-identical to the local writer's.
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
            from tali.jobs import executor_for
            from tali.quality.write import planned_copy

            kwargs["copy"] = planned_copy(executor_for("ray", address=ray))
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
    read = sum(_footer_rows(s) for s in shards)
    # The user's clause is untrusted text: evaluated in the sandbox (metadata views only).
    try:
        table = evaluate_where(
            shards,
            where,
            metrics=metrics,
            columns=None if predicate is not None else ("item_idx", "shard_path", "row"),
        )
    except TaliConfigError as exc:
        hint = _where_hint(exc, metrics)
        if hint is None:
            raise
        raise TaliConfigError(hint) from None
    roots = [str(source)] if isinstance(source, str | os.PathLike) and Path(source).is_dir() else []
    result = FilterResult(split=split, shards=shards, read=read, where=where, source_roots=roots)
    records = table.to_pylist() if predicate is not None else None
    ids = table.column("item_idx").to_pylist()
    given = {str(Path(s).resolve()): s for s in shards}  # the sandbox reads resolved paths
    paths = [given.get(p, p) for p in table.column("shard_path").to_pylist()]
    rows = table.column("row").to_pylist()
    seen: set[tuple[str, int]] = set()
    for i, (item_idx, shard, row) in enumerate(zip(ids, paths, rows)):
        if (shard, row) in seen:
            # Only a metrics table listing one item_idx twice can repeat a row in the join.
            raise TaliSourceError(f"the metrics table lists item_idx {item_idx} more than once")
        seen.add((shard, row))
        if records is not None and predicate is not None and not predicate(_clean(records[i])):
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
    limits: SandboxLimits | None = None,
) -> str:
    """DuckDB's physical plan for a filter: its ``Projections`` list the only
    parquet columns the predicate reads. Planned in the same bounded child as a
    filter (:func:`tali.sql.sandbox.explain_where`): planning evaluates constants."""
    return explain_where(resolve_local_files(source, split), where, metrics=metrics, limits=limits)


def _footer_rows(path: str) -> int:
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise TaliSourceError(f"cannot read parquet footer of {path}: {exc}") from exc


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """NaN metrics read as None in a Python predicate, like SQL NULL."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
