"""What the viewer may serve: the splits and shards of the sources named on the command line.

Every row is addressed as ``(split, index)`` with ``index`` the global row number in the
split (the key :class:`~tali.data.dataset.TaliDataset` uses for its randomness), never by a
path: a path stored in a row (``youtube_video_file_path``) or sent in a request is never
opened. Rows are read with :class:`~tali.data.shards.RowGroupReader`; search runs in a
DuckDB connection that can read only the split's shards, over metadata columns only.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tali.data import layout
from tali.data.row_source import RowSource
from tali.data.rows import row_to_python
from tali.data.shards import RowGroupReader, ShardIndex
from tali.data.sources import SourceLike, resolve_local_files
from tali.errors import TaliConfigError, TaliError, TaliSourceError
from tali.schema import Column, WitField
from tali.sql.sandbox import sandboxed_connection

__all__ = [
    "Catalog",
    "MetricsTable",
    "RowNotFound",
    "SearchHit",
    "SplitView",
    "ValidationFailures",
    "clean_value",
]

#: Text columns a search looks at (metadata only: never image or video bytes).
_SEARCH_TEXT = (
    str(Column.YOUTUBE_TITLE_TEXT),
    *(
        f"array_to_string({Column.WIT_FEATURES}.{f}, ' ')"
        for f in (
            WitField.PAGE_TITLE,
            WitField.SECTION_TITLE,
            WitField.CAPTION_REFERENCE_DESCRIPTION,
            WitField.CAPTION_ALT_TEXT_DESCRIPTION,
            WitField.CAPTION_TITLE_AND_REFERENCE_DESCRIPTION,
        )
    ),
)


class RowNotFound(TaliError, LookupError):
    """A split, row or item the viewer does not serve (HTTP 404)."""


@dataclass(frozen=True)
class SearchHit:
    index: int
    item_idx: int | None
    title: str
    page_title: str


@dataclass
class SplitView:
    """One split: its shards in order and a reader over every column."""

    name: str
    files: tuple[str, ...]
    index: ShardIndex
    reader: RowGroupReader | None
    #: Which SOURCE (0 = the first) the split comes from, and the split's own name there:
    #: a second source's ``train`` is served as ``train@NAME``, never mixed into the first's.
    source: int = 0
    base: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    _item_rows: tuple[np.ndarray, np.ndarray] | None = None  # (sorted item_idx, their rows)
    #: A split read over HTTP (a Hub id or URL): rows come from their own pages by range
    #: requests (:class:`~tali.data.row_source.RowSource`); nothing is downloaded.
    remote: RowSource | None = None

    def require_local(self, what: str) -> None:
        """DuckDB reads local shards only: search, filter and the gallery need a download."""
        if self.remote is not None:
            raise TaliConfigError(
                f"{what} reads the split's shards with DuckDB, which needs them on this disk: "
                f"`tali download` the split first (rows are browsed over HTTP without it)"
            )

    @property
    def num_rows(self) -> int:
        return len(self.index)

    def shards(self) -> list[dict[str, Any]]:
        """``name``, ``first`` global row and ``rows`` of every shard, for the shard picker."""
        out, first = [], 0
        for shard in self.index.shards:
            out.append({"name": Path(shard.path).name, "first": first, "rows": shard.num_rows})
            first += shard.num_rows
        return out

    def locate(self, index: int) -> tuple[int, int]:
        """``(shard number, row inside the shard)`` of global row ``index``."""
        ref, offset = self.index.locate(index)
        return ref.shard, ref.shard_row + offset

    def global_row(self, shard_path: str, row: int) -> int:
        def real(path: str) -> str:
            return path if self.remote is not None else os.path.realpath(path)

        wanted = real(shard_path)
        first = 0
        for shard in self.index.shards:
            if real(shard.path) == wanted:
                return first + row
            first += shard.num_rows
        raise RowNotFound(f"shard {shard_path} is not part of split {self.name!r}")

    def item_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """``item_idx`` sorted, and the global row of each (read once: one int column)."""
        if self._item_rows is None:
            if self.remote is not None:  # one small column, over HTTP
                ids = [
                    self.remote.read_row_group(ref, [str(Column.ITEM_IDX)]).column(0).cast(pa.int64())
                    for ref in self.index.row_groups
                ]
            else:
                ids = [
                    pq.ParquetFile(s.path).read(columns=[str(Column.ITEM_IDX)]).column(0).cast(pa.int64())
                    for s in self.index.shards
                ]
            values = pc.fill_null(pa.chunked_array([c for i in ids for c in i.chunks], pa.int64()), -1)
            array = values.to_numpy()
            order = np.argsort(array, kind="stable")
            self._item_rows = (array[order], order)
        return self._item_rows


class Catalog:
    """The splits of one or more local sources; only their rows are ever served."""

    def __init__(
        self,
        sources: Sequence[SourceLike],
        *,
        splits: Sequence[str] | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        """``sources``: local directories or files, or a Hub id (``owner/name``) / fsspec URL
        (``hf://datasets/...``) browsed over HTTP without downloading (``storage_options``:
        e.g. ``{"endpoint": ...}``); search, filter and the gallery need local shards."""
        if not sources:
            raise TaliSourceError("give at least one source (a dataset directory or parquet files)")
        # (served name, source number, split name in the source, files)
        found: list[tuple[str, int, str, list[str]]] = []
        homes: dict[tuple[str, str], int] = {}  # (folder, split) -> its entry in found
        remote: dict[tuple[int, str], tuple[Any, list[Any]]] = {}  # (source, split) -> opener, identities
        for number, source in enumerate(sources):
            if _is_remote(source):
                from tali.loading import remote_splits

                listed = remote_splits(str(source), storage_options=storage_options)
                home, discovered = str(source), {}
                for base, (files, opener, identities) in listed.items():
                    discovered[base] = files
                    remote[number, base] = (opener, identities)
            else:
                home, discovered = _home(source), _discover(source)
            for base, files in discovered.items():
                if (home, base) in homes:  # shard files of one folder, named one by one: one split
                    entry = found[homes[home, base]]
                    entry[3].extend(f for f in files if f not in entry[3])
                    continue
                name = base
                if any(f[0] == name for f in found):
                    label = re.sub(r"[^A-Za-z0-9_.-]", "_", _label(source)) or str(number + 1)
                    name = f"{base}@{label}"
                    while any(f[0] == name for f in found):
                        name = f"{name}_{number + 1}"
                homes[home, base] = len(found)
                found.append((name, number, base, list(files)))
        if splits:
            unknown = [s for s in splits if not any(s in (f[0], f[2]) for f in found)]
            if unknown:
                have = ", ".join(sorted({f[0] for f in found}))
                raise TaliSourceError(f"split {unknown[0]!r} is not in the sources; they have: {have}")
            found = [f for s in splits for f in found if s in (f[0], f[2])]
        self.splits: dict[str, SplitView] = {}
        for name, number, base, files in found:
            if name in self.splits:
                continue
            if (number, base) in remote:
                opener, identities = remote[number, base]
                rows = RowSource(
                    files,
                    modalities=(),
                    opener=opener,
                    identities=identities,
                    all_columns=True,
                    cache_row_groups=1,
                )
                if len(rows.index) == 0:
                    continue
                self.splits[name] = SplitView(
                    name, tuple(files), rows.index, None, source=number, base=base, remote=rows
                )
                continue
            index = ShardIndex.from_files(files)
            if len(index) == 0:
                continue
            # Every column: the viewer shows all of a row (one row group cached per split).
            reader = RowGroupReader(index, index.column_names, cache_row_groups=1)
            self.splits[name] = SplitView(name, tuple(files), index, reader, source=number, base=base)
        if not self.splits:
            raise TaliSourceError("the sources hold no rows")

    @property
    def first_split(self) -> str:
        for preferred in ("train", "val", "test"):
            if preferred in self.splits:
                return preferred
        return next(iter(self.splits))

    def split(self, name: str) -> SplitView:
        view = self.splits.get(name)
        if view is None:
            raise RowNotFound(f"no split {name!r}; this viewer serves: {', '.join(self.splits)}")
        return view

    def check_index(self, split: str, index: int) -> SplitView:
        view = self.split(split)
        if not 0 <= index < view.num_rows:
            raise RowNotFound(f"row {index} is out of range: split {split!r} has rows 0..{view.num_rows - 1}")
        return view

    def read_row(self, split: str, index: int) -> dict[str, Any]:
        """Every column of one row as Python values (bytes stay bytes)."""
        view = self.check_index(split, index)
        ref, offset = view.index.locate(index)
        with view.lock:  # the reader's handles and cache are not thread-safe
            if view.remote is not None:  # the row's own pages, over HTTP range requests
                return row_to_python(view.remote.read_row(index), 0)
            assert view.reader is not None
            table = view.reader.read_row_group(ref)
        return row_to_python(table, offset)

    def find_item(self, item_idx: int) -> tuple[str, int]:
        """``(split, index)`` of the row with this ``item_idx``."""
        for name, view in self.splits.items():
            ids, rows = view.item_rows()
            k = int(np.searchsorted(ids, item_idx))
            if k < ids.size and ids[k] == item_idx:
                return name, int(rows[k])
        raise RowNotFound(f"no row has item_idx {item_idx}")

    def search(self, split: str, query: str, *, limit: int = 50) -> tuple[list[SearchHit], int]:
        """Rows whose YouTube title or WIT titles/captions contain ``query`` (case-insensitive),
        and how many matched in all."""
        view = self.split(split)
        text = query.strip()
        if not text:
            return [], 0
        if len(text) > 200:
            raise TaliConfigError("a search is at most 200 characters")
        view.require_local("search")
        # The same locked connection as `tali filter`: the shards' metadata views, nothing else.
        con = sandboxed_connection(view.files)
        try:
            blob = "lower(concat_ws(' ', " + ", ".join(_SEARCH_TEXT) + "))"
            con.execute(
                f"CREATE TEMP TABLE hits AS SELECT * FROM metadata WHERE contains({blob}, lower($q))",
                {"q": text},
            )
            total = con.execute("SELECT count(*) FROM hits").fetchone()[0]
            rows = con.execute(
                "SELECT shard_path, row, item_idx, youtube_title_text, "
                f"array_to_string({Column.WIT_FEATURES}.{WitField.PAGE_TITLE}, ' / ') "
                "FROM hits ORDER BY shard_path, row LIMIT $n",
                {"n": int(limit)},
            ).fetchall()
        finally:
            con.close()
        hits = [
            SearchHit(view.global_row(path, int(row)), item, title or "", page or "")
            for path, row, item, title, page in rows
        ]
        hits.sort(key=lambda h: h.index)
        return hits, int(total)

    def filter(self, split: str, where: str, metrics: str | os.PathLike[str] | None) -> tuple[list[int], int]:
        """Global rows of ``split`` that pass ``where``, the same SQL as ``tali filter``
        (evaluated by :func:`tali.quality.select`, so its checks and sandbox apply), and
        how many rows were read."""
        from tali.quality import select

        view = self.split(split)
        view.require_local("the filter")
        try:
            result = select(list(view.files), split=view.base or split, metrics=metrics, where=where)
        except TaliSourceError as exc:
            # The shards and metrics table were read at startup: what fails now is the clause
            # (DuckDB's catalog/type errors, e.g. an unknown function), a bad request.
            raise TaliConfigError(str(exc)) from None
        rows = sorted(view.global_row(path, r) for path, kept in result.positions.items() for r in kept)
        return rows, result.read


class MetricsTable:
    """A metrics parquet from ``tali metrics``, looked up by ``item_idx`` (kept as Arrow,
    not as Python dicts: 1.17 M rows of ~40 columns)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        if not Path(path).is_file():
            raise TaliSourceError(f"metrics table not found: {path}")
        try:
            self.table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise TaliSourceError(f"cannot read metrics table {path}: {exc}") from None
        if str(Column.ITEM_IDX) not in self.table.column_names:
            raise TaliSourceError(f"metrics table {path} has no item_idx column (is it from `tali metrics`?)")
        ids = pc.fill_null(self.table.column(str(Column.ITEM_IDX)).cast(pa.int64()), -1).to_numpy()
        self._order = np.argsort(ids, kind="stable")
        self._ids = ids[self._order]

    def row(
        self, item_idx: int | None, shard: str | None = None, row: int | None = None
    ) -> dict[str, Any] | None:
        """The metrics of the row with ``item_idx``; with ``shard`` (file name) and ``row``,
        only a record measured at that place (two rows sharing an ``item_idx`` never swap)."""
        if item_idx is None:
            return None
        first = int(np.searchsorted(self._ids, item_idx, side="left"))
        last = int(np.searchsorted(self._ids, item_idx, side="right"))
        for k in range(first, min(last, first + 64)):
            record = self.table.slice(int(self._order[k]), 1).to_pylist()[0]
            placed = record.get("shard"), record.get("row")
            if shard is None or placed == (None, None) or placed == (Path(shard).name, row):
                return {name: clean_value(v) for name, v in record.items()}
        return None


class ValidationFailures:
    """A report from ``tali validate --report``: each row's failed checks, by ``item_idx``
    (or shard file name and row, for rows whose ``item_idx`` could not be read)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            blob = json.loads(Path(path).read_text())
            failures = blob["failures"]
            if not isinstance(failures, list):
                raise TypeError("failures is not a list")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TaliSourceError(f"cannot read validation report {path}: {exc}") from None
        self.checks = blob.get("checks", [])
        self._by_item: dict[int, list[dict[str, Any]]] = {}
        self._by_place: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for failure in failures:
            if not isinstance(failure, dict):
                continue
            shown = {k: failure.get(k) for k in ("check", "field", "error", "message")}
            # By place (shard file, row) when the report gives it: a row is matched where it
            # was checked, so another row with the same item_idx never shows these failures.
            if isinstance(failure.get("row"), int) and isinstance(failure.get("shard"), str):
                self._by_place.setdefault((Path(failure["shard"]).name, failure["row"]), []).append(shown)
            elif isinstance(failure.get("item_idx"), int):
                self._by_item.setdefault(failure["item_idx"], []).append(shown)

    def row(self, item_idx: int | None, shard: str, row: int) -> list[dict[str, Any]]:
        """The row's failures; ``[]``: it passed every check of the report."""
        found = self._by_item.get(item_idx, []) if item_idx is not None else []
        return found + self._by_place.get((Path(shard).name, row), [])


def _discover(source: SourceLike) -> dict[str, list[str]]:
    """Split name -> shard files. A directory is read in the Hub layout; a file or a list of
    files is grouped by the split its Hub shard name gives (else the file's stem)."""
    out: dict[str, list[str]] = {}
    if isinstance(source, str | os.PathLike) and not Path(source).exists():
        raise TaliSourceError(
            f"no such file or directory: {source} (a Hub dataset is given as owner/name or hf://...)"
        )
    if isinstance(source, str | os.PathLike) and Path(source).is_dir():
        files = resolve_local_files(source, None)
        names = {_split_of(f) for f in files}
        for name in sorted(names, key=lambda n: ({"train": 0, "val": 1, "test": 2}.get(n, 3), n)):
            try:
                out[name] = resolve_local_files(source, name)
            except TaliSourceError:
                out[name] = [f for f in files if _split_of(f) == name]
        return out
    for f in resolve_local_files(source, None):
        out.setdefault(_split_of(f), []).append(f)
    return out


def _is_remote(source: SourceLike) -> bool:
    """A URL, or an ``owner/name`` that is no local path: a Hub dataset id."""
    if not isinstance(source, str):
        return False
    if "://" in source:
        return True
    from tali.loading import _REPO_RE, _looks_local

    return not Path(source).exists() and bool(_REPO_RE.match(source)) and not _looks_local(source)


def _home(source: SourceLike) -> str:
    """The folder a source lives in (a directory itself; a file's folder)."""
    if isinstance(source, str | os.PathLike):
        path = Path(source).resolve()
        return str(path if path.is_dir() else path.parent)
    first = next(iter(source), "")
    return str(Path(str(first)).resolve().parent) if first else ""


def _label(source: SourceLike) -> str:
    """A short name for a source: its directory's (or first file's folder's) name."""
    if isinstance(source, str | os.PathLike):
        path = Path(source).resolve()
        return path.name if path.is_dir() else path.parent.name
    first = next(iter(source), "")
    return Path(str(first)).resolve().parent.name if first else ""


def _split_of(path: str) -> str:
    """The split of a shard by the one split grammar (:mod:`tali.data.layout`): hash-suffixed
    ``push_to_hub`` names, ``data/{split}/``, the converter's ``default/{split}/NNNN.parquet``."""
    p = Path(path)
    if p.parent.parent.name in ("data", "default"):  # a split folder inside the repo
        return layout.split_of(f"{p.parent.name}/{p.name}") or p.stem
    return layout.split_of(p.name) or p.stem


def clean_value(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, bytes -> their length."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    if isinstance(value, dict):
        return {k: clean_value(v) for k, v in value.items()}
    return value
