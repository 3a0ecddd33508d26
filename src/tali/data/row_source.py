"""``RowSource``: the one front half under both loaders.

Shards -> footers (once per machine, :mod:`tali.data.footers`) -> a global row
index -> the config's column check -> one ``item_ids`` rule -> rows read as
one-row Arrow tables. ``TaliDataset`` (random access) and ``TaliStream``
(ordered, checkpointed iteration) keep only what differs between them.

How a row is read depends on the shard's layout, decided per column chunk
(:func:`tali.data.pages.plan_chunk`):

- *page mode*: a large flat column whose pages hold few rows (what ``datasets`` >= 4
  writes: one clip per page, with a page index) is read from the row's own
  pages: a map-style sample costs its own bytes whatever the row-group size;
- *row-group mode*: everything else (nested ``wit_features``, small columns, a
  chunk written as one page or one dictionary) is read a row group at a time by
  pyarrow and the last ``cache_row_groups`` kept; pair it with
  :class:`tali.data.sampler.RowGroupShuffleSampler` for shuffled random access.

:meth:`RowSource.layout` reports which, per column, with the reason.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tali.data import layout
from tali.data.footers import (
    FileIdentity,
    cache_root,
    fetch_tails,
    footer_crc,
    load_json,
    local_identity,
    store_json,
    tail_footer,
)
from tali.data.pages import ChunkPages, FsRanges, LocalRanges, RangeReader, decode_row, plan_chunk
from tali.data.parquet_thrift import ThriftError, read_footer_locations
from tali.data.rows import RowLimits
from tali.data.shards import Opener, RowGroupRef, ShardIndex, ShardInfo
from tali.errors import TaliConfigError, TaliDataError, TaliSourceError
from tali.schema import Column, columns_for, require_columns

__all__ = ["RowSource", "ranges_for", "shard_index"]

#: Columns averaging fewer bytes per row than this are read a row group at a time even when
#: their pages would allow rows: one request for the chunk beats one per row.
PAGE_MODE_MIN_BYTES_PER_ROW = 4096
#: A page's header and statistics: what its stored size may exceed its value's by.
PAGE_OVERHEAD_BYTES = 64 * 1024


class OpenerRanges:
    """Range reads through any ``path -> file`` opener (seek + read)."""

    def __init__(self, opener: Opener) -> None:
        self.opener = opener
        self.bytes_read = 0
        self.requests = 0

    def read(self, path: str, offset: int, length: int) -> bytes:
        with self.opener(path) as fh:
            fh.seek(offset)
            data = fh.read(length)
        self.bytes_read += len(data)
        self.requests += 1
        return bytes(data)


def ranges_for(opener: Opener | None) -> RangeReader:
    """Local ``pread`` (no opener), fsspec range requests (``FsOpener``), or the opener itself."""
    if opener is None:
        return LocalRanges()
    fs = getattr(opener, "fs", None)
    if fs is not None and hasattr(fs, "cat_file"):
        return FsRanges(fs)
    return OpenerRanges(opener)


def _identities(
    files: Sequence[str], opener: Opener | None, given: Sequence[FileIdentity] | None
) -> list[FileIdentity]:
    if given is not None:
        return list(given)
    if opener is None:
        out = []
        for f in files:
            try:
                out.append(local_identity(f))
            except OSError as exc:
                raise TaliSourceError(f"cannot read parquet shard {f}: {exc}") from exc
        return out
    fs = getattr(opener, "fs", None)
    out = []
    for f in files:
        if fs is None:
            with opener(f) as fh:
                size = fh.seek(0, os.SEEK_END)
            out.append(FileIdentity(f, int(size), "opened"))
            continue
        info = fs.info(f)
        tag = info.get("blob_id") or info.get("ETag") or info.get("etag") or info.get("mtime") or ""
        lfs = info.get("lfs")
        if isinstance(lfs, dict) and lfs.get("sha256"):
            tag = lfs["sha256"]
        out.append(FileIdentity(f, int(info["size"]), str(tag)))
    return out


def shard_index(
    files: Sequence[str],
    opener: Opener | None = None,
    *,
    identities: Sequence[FileIdentity] | None = None,
    max_workers: int = 16,
) -> tuple[ShardIndex, list[bytes]]:
    """The global row index of ``files`` and each file's tail (footer), from the disk cache
    or one request per shard."""
    files = [str(f) for f in files]
    idents = _identities(files, opener, identities)
    reader = ranges_for(opener)
    # threads only hide network latency; a local disk is read in order
    workers = max_workers if opener is not None else 1
    tails = fetch_tails(idents, lambda ident, o, n: reader.read(ident.path, o, n), max_workers=workers)
    close = getattr(reader, "close", None)
    if close is not None:
        close()
    infos = []
    for f, ident, tail in zip(files, idents, tails):
        try:
            meta = pq.read_metadata(pa.BufferReader(tail_footer(tail)[1]))
        except (OSError, pa.ArrowException) as exc:
            raise TaliSourceError(f"cannot read parquet footer of {f}: {exc}") from exc
        infos.append(
            ShardInfo(
                path=f,
                num_rows=meta.num_rows,
                row_group_rows=tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups)),
                column_names=tuple(meta.schema.to_arrow_schema().names),
                size=ident.size,
                footer_crc=footer_crc(tail),
                identity=ident.key(),
            )
        )
    return ShardIndex(infos), tails


class RowSource:
    """Rows of an ordered list of shards, projected to ``columns``, by global row number.

    Picklable into DataLoader workers (handles and caches are rebuilt there); the
    footers travel with it, so a worker sends no footer request."""

    def __init__(
        self,
        files: Sequence[str],
        *,
        modalities: Iterable[Any],
        opener: Opener | None = None,
        split: str | None = None,
        identities: Sequence[FileIdentity] | None = None,
        index: ShardIndex | None = None,
        cache_row_groups: int = 2,
        max_open_shards: int = 16,
        page_reads: bool = True,
        max_workers: int = 16,
        all_columns: bool = False,
    ) -> None:
        if not isinstance(max_open_shards, int) or max_open_shards < 1:
            raise TaliConfigError(f"max_open_shards must be an int >= 1, got {max_open_shards!r}")
        if not isinstance(cache_row_groups, int) or cache_row_groups < 0:
            raise TaliConfigError(f"cache_row_groups must be an int >= 0, got {cache_row_groups!r}")
        self.files = [str(f) for f in files]
        if not self.files:
            raise TaliSourceError("a row source needs at least one parquet shard")
        self.opener = opener
        self.split = split or _split_name(self.files)
        built, tails = shard_index(self.files, opener, identities=identities, max_workers=max_workers)
        self.index = index if index is not None and len(index.shards) == len(built.shards) else built
        self._tails = tails
        modalities = tuple(modalities)
        needed = columns_for(modalities) if modalities else []
        for shard in self.index.shards:  # from footers: a foreign file fails here, not at sample 0
            require_columns(shard.path, shard.column_names, needed, purpose="this config's modalities")
        #: The projection: what the modalities need, plus optional columns the shards have
        #: (``all_columns``: every column every shard has, as the viewer shows a row).
        self.columns = (
            list(self.index.column_names)
            if all_columns
            else columns_for(modalities, available=self.index.column_names)
        )
        self.cache_row_groups = cache_row_groups
        self.max_open_shards = max_open_shards
        self.page_reads = bool(page_reads)
        self._init_runtime()

    # -- process-local state ---------------------------------------------------------------

    def _init_runtime(self) -> None:
        self.ranges = ranges_for(self.opener)
        self._meta: dict[int, pq.FileMetaData] = {}
        self._leaves: dict[int, dict[str, list[tuple[int, int, int, str]]]] = {}
        self._plans: OrderedDict[tuple[int, int], dict[str, list[ChunkPages] | None]] = OrderedDict()
        self._files: OrderedDict[int, pq.ParquetFile] = OrderedDict()
        self._handles: dict[int, Any] = {}
        self._tables: OrderedDict[tuple[int, int], pa.Table] = OrderedDict()
        self._rg_bytes = 0

    def __getstate__(self) -> dict[str, Any]:
        keep = ("files", "opener", "split", "index", "_tails", "columns", "cache_row_groups")
        state = {k: self.__dict__[k] for k in keep}
        state.update(max_open_shards=self.max_open_shards, page_reads=self.page_reads)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    @property
    def bytes_read(self) -> int:
        """Bytes this process read for rows (page reads and row groups), footers excluded."""
        return int(self.ranges.bytes_read) + self._rg_bytes

    def __len__(self) -> int:
        return self.index.num_rows

    # -- footers and page tables -------------------------------------------------------------

    def metadata(self, shard: int) -> pq.FileMetaData:
        meta = self._meta.get(shard)
        if meta is None:
            meta = self._meta[shard] = pq.read_metadata(pa.BufferReader(tail_footer(self._tails[shard])[1]))
        return meta

    def _leaf_info(self, shard: int) -> dict[str, list[tuple[int, int, int, str]]]:
        """Top-level column -> its leaves ``(leaf index, max def, max rep, physical type)``."""
        info = self._leaves.get(shard)
        if info is None:
            schema = self.metadata(shard).schema
            info = {}
            for i in range(len(schema)):
                col = schema.column(i)
                top = col.path.split(".")[0]
                info.setdefault(top, []).append(
                    (i, col.max_definition_level, col.max_repetition_level, col.physical_type)
                )
            self._leaves[shard] = info
        return info

    def _plan(self, ref: RowGroupRef) -> dict[str, list[ChunkPages] | None]:
        """Per projected column: its leaves' page tables (page mode), or ``None`` (row group)."""
        key = (ref.shard, ref.row_group)
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
            return plan
        ident = self.index.shards[ref.shard].identity
        path = cache_root() / f"{ident}.rg{ref.row_group}.pages.json" if ident else None
        stored = load_json(path) if path is not None else None
        plan = {}
        if isinstance(stored, dict) and set(stored) >= set(self.columns):
            try:
                plan = {
                    c: None if stored[c] is None else [ChunkPages.from_json(p) for p in stored[c]]
                    for c in self.columns
                }
            except (TypeError, ValueError):
                plan = {}
        if not plan:
            plan = self._build_plan(ref)
            if path is not None:
                store_json(
                    path, {c: None if v is None else [p.to_json() for p in v] for c, v in plan.items()}
                )
        self._plans[key] = plan
        while len(self._plans) > 256:
            self._plans.popitem(last=False)
        return plan

    def _build_plan(self, ref: RowGroupRef) -> dict[str, list[ChunkPages] | None]:
        shard = self.index.shards[ref.shard]
        plan: dict[str, list[ChunkPages] | None] = dict.fromkeys(self.columns)
        if not self.page_reads or ref.num_rows <= 1:  # a one-row group is its own row
            return plan
        tail_start, tail = tail_footer(self._tails[ref.shard])
        try:
            footer_len = int.from_bytes(tail[-8:-4], "little")
            locations = read_footer_locations(memoryview(tail)[len(tail) - 8 - footer_len : len(tail) - 8])
        except ThriftError as exc:
            raise TaliSourceError(f"{shard.path}: corrupt footer: {exc}") from exc
        chunks = locations[ref.row_group]
        leaves = self._leaf_info(ref.shard)
        for column in self.columns:
            parts = leaves.get(column, [])
            size = sum(chunks[i].total_compressed_size for i, *_ in parts if i < len(chunks))
            if not parts or size < PAGE_MODE_MIN_BYTES_PER_ROW * ref.num_rows:
                continue
            tables = []
            for leaf, max_def, max_rep, physical in parts:
                chunk = chunks[leaf]
                oi = None
                if chunk.offset_index is not None:
                    offset, length = chunk.offset_index
                    if tail_start <= offset and offset + length <= tail_start + len(tail) - 8:
                        oi = tail[offset - tail_start : offset - tail_start + length]
                    else:
                        oi = self.ranges.read(shard.path, offset, length)
                tables.append(
                    plan_chunk(
                        self.ranges,
                        shard.path,
                        leaf,
                        chunk,
                        num_rows=ref.num_rows,
                        max_def=max_def,
                        max_rep=max_rep,
                        physical_type=physical,
                        offset_index=oi,
                    )
                )
            if all(t.page_mode for t in tables):
                plan[column] = tables
        return plan

    def layout(self) -> dict[str, Counter[str]]:
        """Per projected column, how many row groups read it by page and by row group
        (from the footers and page tables; builds the tables it has not seen)."""
        out: dict[str, Counter[str]] = {c: Counter() for c in self.columns}
        for ref in self.index.row_groups:
            for column, tables in self._plan(ref).items():
                out[column]["page" if tables else "row_group"] += 1
        return out

    def row_group_bound(self, ref: RowGroupRef) -> bool:
        """Whether reading one row of ``ref`` reads (and caches) its row group's large columns
        (small columns are always read a row group at a time: that costs little)."""
        plan = self._plan(ref)
        return any(plan[c] is None and self._chunk_bytes(ref, c) >= self._large(ref) for c in self.columns)

    def _large(self, ref: RowGroupRef) -> int:
        return PAGE_MODE_MIN_BYTES_PER_ROW * ref.num_rows

    def _chunk_bytes(self, ref: RowGroupRef, column: str) -> int:
        group = self.metadata(ref.shard).row_group(ref.row_group)
        return sum(group.column(i).total_compressed_size for i in self._leaf_indices(ref.shard, [column]))

    # -- reading ---------------------------------------------------------------------------

    def _parquet(self, shard: int) -> pq.ParquetFile:
        handle = self._files.get(shard)
        if handle is not None:
            self._files.move_to_end(shard)
            return handle
        while len(self._files) >= self.max_open_shards:
            old, oldest = self._files.popitem(last=False)
            _close(oldest)
            _close(self._handles.pop(old, None))
        path = self.index.shards[shard].path
        source = self.opener(path) if self.opener is not None else path
        try:
            handle = pq.ParquetFile(source, metadata=self.metadata(shard))
        except (OSError, pa.ArrowException) as exc:
            _close(source if self.opener is not None else None)
            raise TaliSourceError(f"cannot open parquet shard {path}: {exc}") from exc
        if self.opener is not None:
            self._handles[shard] = source
        self._files[shard] = handle
        return handle

    def read_row_group(
        self, ref: RowGroupRef, columns: Sequence[str] | None = None, *, limits: RowLimits | None = None
    ) -> pa.Table:
        """Row group ``ref``, projected (``columns``: a subset; default every projected column).

        ``limits``: a column chunk over ``max_row_group_bytes`` uncompressed, or a one-row
        group's value over its bound, is refused from the footer before it is read."""
        cols = list(self.columns if columns is None else columns)
        key = (ref.shard, ref.row_group)
        cached = self._tables.get(key)
        if cached is not None and all(c in cached.column_names for c in cols):
            self._tables.move_to_end(key)
            return cached.select(cols)
        if limits is not None:
            self._refuse_oversized_chunks(ref, 0, cols, limits)
        path = self.index.shards[ref.shard].path
        try:
            table = self._parquet(ref.shard).read_row_group(ref.row_group, columns=cols)
        except OSError as exc:
            raise TaliSourceError(f"cannot read row group {ref.row_group} of {path}: {exc}") from exc
        except pa.ArrowException as exc:
            raise TaliSourceError(f"corrupt row group {ref.row_group} of {path}: {exc}") from exc
        self._rg_bytes += sum(
            self.metadata(ref.shard).row_group(ref.row_group).column(i).total_compressed_size
            for i in self._leaf_indices(ref.shard, cols)
        )
        if self.cache_row_groups:
            self._tables[key] = table
            while len(self._tables) > self.cache_row_groups:
                self._tables.popitem(last=False)
        return table

    def _leaf_indices(self, shard: int, columns: Sequence[str]) -> list[int]:
        leaves = self._leaf_info(shard)
        return [i for c in columns for i, *_ in leaves.get(c, [])]

    def locate(self, row: int) -> tuple[RowGroupRef, int]:
        return self.index.locate(row)

    def read_row(self, row: int, *, limits: RowLimits | None = None) -> pa.Table:
        """Global row ``row`` as a one-row table of the projected columns (schema order).

        ``limits``: a value read by page whose page alone is over its bound is refused before
        a byte of it is read (the page's size is in the page index), with the decoder's own
        error naming the field; :meth:`RowLimits.check` still checks exact sizes afterwards."""
        ref, offset = self.index.locate(row)
        plan = self._plan(ref)
        if limits is not None:
            self._refuse_oversized(ref, offset, plan, limits)
        whole = [c for c in self.columns if plan[c] is None]
        arrays: dict[str, pa.Array] = {}
        if whole:
            if limits is not None and (ref.shard, ref.row_group) not in self._tables:
                self._refuse_oversized_chunks(ref, offset, whole, limits)
            table = self.read_row_group(ref, whole)
            for c in whole:
                arrays[c] = table.column(c).slice(offset, 1).combine_chunks()
        path = self.index.shards[ref.shard].path
        schema = self.metadata(ref.shard).schema.to_arrow_schema()
        for c, tables in plan.items():
            if tables is not None:
                try:
                    arrays[c] = self._page_value(path, schema.field(c), tables, offset)
                except (TaliSourceError, ThriftError, pa.ArrowException) as exc:
                    # one row's pages are that row's bytes: a bad row naming its field, not a bad shard
                    raise TaliDataError(
                        f"cannot read {c} of row {ref.shard_row + offset}: {exc}",
                        field=c,
                        shard=Path(path).name,
                        row=ref.shard_row + offset,
                    ) from exc
        return pa.table({c: arrays[c] for c in self.columns})

    def _refuse_oversized(
        self, ref: RowGroupRef, offset: int, plan: dict[str, list[ChunkPages] | None], limits: RowLimits
    ) -> None:
        for column, tables in plan.items():
            if tables is None:
                continue
            bound, error, message = limits._bound(column)
            size = 0
            for pages in tables:
                k = pages.page_of(offset)
                end = pages.first_rows[k + 1] if k + 1 < len(pages.first_rows) else pages.num_rows
                if end - pages.first_rows[k] == 1:  # the page is this row's value alone
                    size += pages.sizes[k]
            # a compressed page is at most a few headers' bytes over its value
            if size > bound + PAGE_OVERHEAD_BYTES:
                raise error(
                    message.format(size=size, limit=bound) + " (its page, before reading it)",
                    field=column,
                    shard=Path(self.index.shards[ref.shard].path).name,
                    row=ref.shard_row + offset,
                )

    def _refuse_oversized_chunks(
        self, ref: RowGroupRef, offset: int, columns: Sequence[str], limits: RowLimits
    ) -> None:
        """Refuse, from the footer's uncompressed sizes and before a byte is read, a column
        chunk read whole that is over ``max_row_group_bytes`` (its rows cannot be read
        without reading it), or a one-row group's chunk over its value's bound (the chunk
        is that value: a 200 MB clip in a one-row group cost 587 MiB before its refusal)."""
        group = self.metadata(ref.shard).row_group(ref.row_group)
        shard = Path(self.index.shards[ref.shard].path).name
        row = ref.shard_row + offset
        for column in columns:
            size = sum(
                group.column(i).total_uncompressed_size for i in self._leaf_indices(ref.shard, [column])
            )
            if ref.num_rows == 1:
                bound, error, message = limits._bound(column)
                if size > bound + PAGE_OVERHEAD_BYTES:
                    raise error(
                        message.format(size=size, limit=bound)
                        + " (its one-row column chunk, from the footer, before reading it)",
                        field=column,
                        shard=shard,
                        row=row,
                    )
            if size > limits.max_row_group_bytes:
                raise TaliDataError(
                    f"{column} of row group {ref.row_group} is {size} bytes uncompressed, over the "
                    f"{limits.max_row_group_bytes}-byte row-group limit (RowLimits.max_row_group_bytes); "
                    "its rows are not read",
                    field=column,
                    shard=shard,
                    row=row,
                )

    def _page_value(self, path: str, field: pa.Field, tables: list[ChunkPages], offset: int) -> pa.Array:
        values = [decode_row(self.ranges, path, t, offset) for t in tables]
        kind = field.type
        if not pa.types.is_struct(kind):
            _, value = values[0]
            return _binary_like([value], kind)
        # a struct of flat leaves (image: bytes, path): definition level 0 means the struct is null
        children = []
        for i in range(kind.num_fields):
            child = kind.field(i)
            _, value = values[i]
            children.append(_binary_like([value], child.type))
        null = values[0][0] == 0
        return pa.StructArray.from_arrays(children, fields=list(kind), mask=pa.array([null]))

    # -- item ids --------------------------------------------------------------------------

    def item_rows(self, item_ids: Iterable[int]) -> np.ndarray:
        """Global rows whose ``item_idx`` is in ``item_ids`` (sorted). Every id must exist in
        the split: a missing one is a :class:`TaliConfigError` naming the split, never a
        silently smaller dataset. Only the ``item_idx`` column is read."""
        try:
            wanted = pa.array(sorted({int(i) for i in item_ids}), pa.int64())
        except (TypeError, ValueError) as exc:
            raise TaliConfigError(f"item_ids must be integers: {exc}") from exc
        for shard in self.index.shards:
            if str(Column.ITEM_IDX) not in shard.column_names:
                raise TaliConfigError(f"item_ids= needs the item_idx column, which {shard.path} lacks")
        parts = []
        for ref in self.index.row_groups:
            parts.extend(self.read_row_group(ref, [str(Column.ITEM_IDX)]).column(0).cast(pa.int64()).chunks)
        ids = pa.chunked_array(parts, pa.int64())
        keep = pc.fill_null(pc.is_in(ids, value_set=wanted), False)
        missing = pc.filter(wanted, pc.invert(pc.is_in(wanted, value_set=pc.filter(ids, keep))))
        if len(missing):
            raise TaliConfigError(
                f"{len(missing)} of {len(wanted)} item_ids are not in split {self.split!r} "
                f"(first: {missing[:5].to_pylist()}); was the index built from another split?"
            )
        return np.flatnonzero(keep.to_numpy(zero_copy_only=False))

    def close(self) -> None:
        for handle in self._files.values():
            _close(handle)
        for source in self._handles.values():
            _close(source)
        self._files.clear()
        self._handles.clear()
        self._tables.clear()
        close = getattr(self.ranges, "close", None)
        if close is not None:
            close()

    def __repr__(self) -> str:
        return f"RowSource(split={self.split!r}, rows={len(self)}, shards={len(self.files)}, columns={self.columns})"


def _binary_like(values: list[bytes | None], kind: pa.DataType) -> pa.Array:
    if pa.types.is_large_binary(kind) or pa.types.is_large_string(kind):
        raw = pa.array(values, pa.large_binary())
    else:
        raw = pa.array(values, pa.binary())
    # string columns are reinterpreted, not cast: invalid UTF-8 must reach the row's own
    # located error (tali.data.rows), not fail the read
    return raw.view(kind) if raw.type != kind else raw


def _split_name(files: Sequence[str]) -> str | None:
    names = {layout.split_of(Path(f).name) or layout.split_of("/".join(Path(f).parts[-2:])) for f in files}
    # the converter's default/{split}/NNNN.parquet names no split in the file name
    names.discard(None)
    return names.pop() if len(names) == 1 else None


def _close(handle: Any) -> None:
    if handle is not None:
        with contextlib.suppress(Exception):  # closing a broken handle must not fail a read
            handle.close()
