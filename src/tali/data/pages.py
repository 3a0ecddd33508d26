"""One row's values from its own parquet pages: random access at real row-group size.

pyarrow reads a whole column chunk to give one row. TALI's row groups hold ~100
rows of ~1.7 MB, so a map-style sample would read ~170 MB for its own 1.7 MB.
Where a column chunk's pages hold few rows each (``datasets`` >= 4 writes one
1.7 MB clip per page, with a page index), this module finds the page of a row
(from the ``OffsetIndex``, else by scanning the chunk's page headers once) and
decodes just that page: the bytes read per sample are the row's own pages.

Scope, measured to be what TALI needs: flat ``BYTE_ARRAY`` leaves (the clip,
the image's bytes and path, subtitles, descriptions), PLAIN or dictionary
encoded, data pages v1 and v2, every codec pyarrow ships. Anything else
(nested lists such as ``wit_features``, one page for the whole chunk, a
dictionary page as large as the chunk, as pyarrow's defaults write for 100 large
values) is read a row group at a time by pyarrow: :func:`plan_chunk` says which,
and why, per column chunk.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from tali.data.parquet_thrift import (
    ColumnChunkLocation,
    PageHeader,
    ThriftError,
    is_truncated,
    read_offset_index,
    read_page_header,
)
from tali.errors import TaliSourceError

__all__ = [
    "ChunkPages",
    "RangeReader",
    "decode_row",
    "plan_chunk",
]

_CODECS = {0: None, 1: "snappy", 2: "gzip", 4: "brotli", 6: "zstd", 7: "lz4_raw"}
PLAIN, PLAIN_DICTIONARY, RLE_DICTIONARY = 0, 2, 8
#: A page that decodes to more than this is refused (hostile headers): TALI's largest value
#: is a clip capped far below (``limits.ROW_MEMORY_BUDGET_BYTES``).
MAX_PAGE_BYTES = 1 << 30
#: A chunk this small is read as its page even when all its rows share it.
SMALL_CHUNK_BYTES = 64 * 1024


class RangeReader(Protocol):
    """Reads ``length`` bytes at ``offset`` of one file: one ``pread`` locally, one HTTP
    range request remotely. Counts what it read (``bytes_read``, ``requests``)."""

    bytes_read: int
    requests: int

    def read(self, path: str, offset: int, length: int) -> bytes: ...


class LocalRanges:
    """``os.pread`` on kept file descriptors, at most ``max_open`` (thread-safe)."""

    def __init__(self, max_open: int = 16) -> None:
        self.max_open = max_open
        self.bytes_read = 0
        self.requests = 0
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()

    def read(self, path: str, offset: int, length: int) -> bytes:
        # under the lock: another thread must not close (and the OS reuse) this fd mid-read
        with self._lock:
            fd = self._fds.get(path)
            if fd is None:
                while len(self._fds) >= self.max_open:
                    os.close(self._fds.pop(next(iter(self._fds))))
                fd = self._fds[path] = os.open(path, os.O_RDONLY)
            data = os.pread(fd, length, offset)
        self.bytes_read += len(data)
        self.requests += 1
        return data

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {"max_open": self.max_open}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_open"])  # type: ignore[misc]


class FsRanges:
    """One ``cat_file`` range request per read on an fsspec filesystem (no read-ahead:
    a 1.7 MB page must not pull a 5 MB block)."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs
        self.bytes_read = 0
        self.requests = 0

    def read(self, path: str, offset: int, length: int) -> bytes:
        data = self.fs.cat_file(path, start=offset, end=offset + length)
        self.bytes_read += len(data)
        self.requests += 1
        return bytes(data)

    def __getstate__(self) -> dict[str, Any]:
        return {"fs": self.fs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["fs"])  # type: ignore[misc]


@dataclass(frozen=True)
class ChunkPages:
    """Where one column chunk's data pages are, and how a row is read from them.

    ``page_mode``: rows are read from their own page; else ``why`` says why the
    chunk is read whole (by pyarrow, a row group at a time)."""

    leaf: int  # leaf column index in the file schema
    codec: int
    max_def: int
    offsets: tuple[int, ...]  # file offset of each data page (its header)
    sizes: tuple[int, ...]  # header + compressed body
    first_rows: tuple[int, ...]  # first row (within the row group) of each page
    num_rows: int
    dictionary: tuple[int, int] | None  # (offset, size) of the dictionary page
    page_mode: bool
    why: str = ""

    def page_of(self, row: int) -> int:
        return bisect.bisect_right(self.first_rows, row) - 1

    def to_json(self) -> list[Any]:
        return [
            self.leaf,
            self.codec,
            self.max_def,
            list(self.offsets),
            list(self.sizes),
            list(self.first_rows),
            self.num_rows,
            list(self.dictionary) if self.dictionary else None,
            self.page_mode,
            self.why,
        ]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> ChunkPages:
        leaf, codec, max_def, offsets, sizes, first, rows, dictionary, mode, why = data
        return cls(
            int(leaf),
            int(codec),
            int(max_def),
            tuple(int(x) for x in offsets),
            tuple(int(x) for x in sizes),
            tuple(int(x) for x in first),
            int(rows),
            (int(dictionary[0]), int(dictionary[1])) if dictionary else None,
            bool(mode),
            str(why),
        )


def _header_at(reader: RangeReader, path: str, offset: int, limit: int) -> tuple[PageHeader, bytes]:
    """The page header at ``offset`` (reads 4 KiB, more if its statistics are long)."""
    size = 4096
    while True:
        data = reader.read(path, offset, min(size, limit))
        try:
            return read_page_header(data), data
        except ThriftError as exc:
            if not is_truncated(exc) or size >= limit:
                raise TaliSourceError(f"{path}: corrupt page header at byte {offset}: {exc}") from exc
            size *= 8


def plan_chunk(
    reader: RangeReader,
    path: str,
    leaf: int,
    chunk: ColumnChunkLocation,
    *,
    num_rows: int,
    max_def: int,
    max_rep: int,
    physical_type: str,
    offset_index: bytes | None,
) -> ChunkPages:
    """The page table of one column chunk, and whether rows can be read page by page."""

    def whole(why: str) -> ChunkPages:
        return ChunkPages(leaf, chunk.codec, max_def, (), (), (), num_rows, None, False, why)

    if physical_type != "BYTE_ARRAY" or max_rep != 0:
        return whole("not a flat byte-array column")
    if chunk.codec not in _CODECS:
        return whole(f"codec {chunk.codec} is not available")
    if offset_index is not None:
        try:
            locations = read_offset_index(offset_index)
        except ThriftError as exc:
            raise TaliSourceError(f"{path}: corrupt offset index of leaf {leaf}: {exc}") from exc
        offsets = tuple(o for o, _, _ in locations)
        sizes = tuple(s for _, s, _ in locations)
        first_rows = tuple(f for _, _, f in locations)
    else:  # no page index: walk the headers once (cached on disk by the caller)
        offsets_l, sizes_l, first_l = [], [], []
        pos = chunk.data_page_offset
        if chunk.dictionary_page_offset is not None and 0 < chunk.dictionary_page_offset < pos:
            pos = chunk.dictionary_page_offset
        end = pos + chunk.total_compressed_size
        row = 0
        while pos < end and row < num_rows:
            header, _ = _header_at(reader, path, pos, end - pos)
            size = header.header_size + header.compressed_size
            if header.type in (PageHeader.DATA, PageHeader.DATA_V2):
                offsets_l.append(pos)
                sizes_l.append(size)
                first_l.append(row)
                # flat column: one value per row (v1 counts values, nulls included)
                row += header.num_rows if header.num_rows is not None else header.num_values
            pos += size
        offsets, sizes, first_rows = tuple(offsets_l), tuple(sizes_l), tuple(first_l)
    if not offsets or first_rows[0] != 0 or list(first_rows) != sorted(first_rows):
        return whole("no usable page locations")
    dictionary = None
    first_data = offsets[0]
    if chunk.dictionary_page_offset is not None and chunk.dictionary_page_offset < first_data:
        dictionary = (chunk.dictionary_page_offset, first_data - chunk.dictionary_page_offset)
    bounds = [*first_rows[1:], num_rows]
    most = max(b - a for a, b in zip(first_rows, bounds))
    # Many rows on one page: reading "a row's page" is reading the chunk; only a small chunk
    # (a struct's short ``path`` leaf beside its large ``bytes``) is still read this way.
    if most > 1 and most * 4 > num_rows and chunk.total_compressed_size > SMALL_CHUNK_BYTES:
        return whole(f"{most} of {num_rows} rows share a page")
    # A dictionary page is read with each dictionary-encoded page: fine when it holds a value
    # or two (datasets >= 4: the first clip, then PLAIN pages), not when it holds the chunk
    # (pyarrow's defaults: every clip in the dictionary, a page of indices after it).
    if dictionary is not None and dictionary[1] > max(SMALL_CHUNK_BYTES, 2 * max(sizes)):
        return whole("its dictionary page holds the chunk's values")
    return ChunkPages(leaf, chunk.codec, max_def, offsets, sizes, first_rows, num_rows, dictionary, True)


def _decompress(data: bytes | memoryview, codec: int, size: int) -> bytes:
    if size < 0 or size > MAX_PAGE_BYTES:
        raise TaliSourceError(f"page of {size} bytes refused (limit {MAX_PAGE_BYTES})")
    name = _CODECS[codec]
    if name is None:
        return bytes(data)
    try:
        return pa.Codec(name).decompress(data, decompressed_size=size, asbytes=True)
    except (pa.ArrowException, ValueError) as exc:
        raise TaliSourceError(f"cannot decompress a {name} page: {exc}") from exc


def _rle_hybrid(data: bytes | memoryview, bit_width: int, count: int) -> np.ndarray:
    """Parquet's RLE / bit-packed hybrid (levels, dictionary indices) into ``count`` ints."""
    out = np.zeros(count, dtype=np.int64)
    pos = filled = 0
    width_bytes = (bit_width + 7) // 8
    view = memoryview(data)
    while filled < count:
        header = shift = 0
        while True:
            if pos >= len(view):
                raise TaliSourceError("RLE data ends early")
            b = view[pos]
            pos += 1
            header |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if header & 1:  # bit-packed: groups of 8 values
            groups = header >> 1
            nbytes = groups * bit_width
            bits = np.unpackbits(np.frombuffer(view[pos : pos + nbytes], dtype=np.uint8), bitorder="little")
            pos += nbytes
            n = min(groups * 8, count - filled)
            if bit_width:
                values = bits[: groups * 8 * bit_width].reshape(-1, bit_width)
                weights = 1 << np.arange(bit_width, dtype=np.int64)
                out[filled : filled + n] = (values[:n] * weights).sum(axis=1)
            filled += n
        else:
            run = header >> 1
            value = int.from_bytes(view[pos : pos + width_bytes], "little")
            pos += width_bytes
            n = min(run, count - filled)
            if n <= 0 and run == 0:
                raise TaliSourceError("RLE run of length 0")
            out[filled : filled + n] = value
            filled += n
    return out


def _plain_values(data: bytes | memoryview, count: int) -> list[bytes]:
    view = memoryview(data)
    out, pos = [], 0
    for _ in range(count):
        if pos + 4 > len(view):
            raise TaliSourceError("PLAIN byte-array page ends early")
        n = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4
        if pos + n > len(view):
            raise TaliSourceError(f"PLAIN value of {n} bytes runs past its page")
        out.append(bytes(view[pos : pos + n]))
        pos += n
    return out


def _page_values(
    raw: bytes, pages: ChunkPages, dictionary: list[bytes] | None
) -> tuple[np.ndarray, list[bytes], bool]:
    """(definition levels, non-null values, dictionary-encoded) of one data page."""
    header = read_page_header(raw)
    body = memoryview(raw)[header.header_size :]
    n = header.num_values
    width = int(pages.max_def).bit_length()
    if header.type == PageHeader.DATA_V2:
        levels_len = header.def_levels_bytes + header.rep_levels_bytes
        levels_raw = body[header.rep_levels_bytes : levels_len]
        rest = body[levels_len:]
        size = header.uncompressed_size - levels_len
        values = _decompress(rest, pages.codec, size) if header.is_compressed else bytes(rest)
        levels = _rle_hybrid(levels_raw, width, n) if pages.max_def else np.full(n, 0)
    elif header.type == PageHeader.DATA:
        page = _decompress(body, pages.codec, header.uncompressed_size)
        if pages.max_def:
            length = int.from_bytes(page[:4], "little")
            levels = _rle_hybrid(memoryview(page)[4 : 4 + length], width, n)
            values = page[4 + length :]
        else:
            levels, values = np.full(n, 0), page
    else:
        raise TaliSourceError(f"page type {header.type} where a data page was expected")
    present = int((levels == pages.max_def).sum())
    if header.encoding == PLAIN:
        return levels, _plain_values(values, present), False
    if header.encoding in (PLAIN_DICTIONARY, RLE_DICTIONARY):
        if dictionary is None:
            raise TaliSourceError("a dictionary-encoded page without a dictionary page")
        if present == 0:
            return levels, [], True
        width_idx = values[0]
        idx = _rle_hybrid(memoryview(values)[1:], width_idx, present)
        if idx.size and (idx.min() < 0 or idx.max() >= len(dictionary)):
            raise TaliSourceError("dictionary index out of range")
        return levels, [dictionary[i] for i in idx], True
    raise TaliSourceError(f"value encoding {header.encoding} is not read page by page")


def _dictionary(reader: RangeReader, path: str, pages: ChunkPages) -> list[bytes]:
    assert pages.dictionary is not None
    offset, size = pages.dictionary
    raw = reader.read(path, offset, size)
    header = read_page_header(raw)
    body = _decompress(memoryview(raw)[header.header_size :], pages.codec, header.uncompressed_size)
    return _plain_values(body, header.num_values)


def decode_row(reader: RangeReader, path: str, pages: ChunkPages, row: int) -> tuple[int, bytes | None]:
    """``(definition level, value or None)`` of ``row`` (within its row group) in this chunk."""
    if not pages.page_mode:
        raise ValueError("decode_row on a chunk that is read whole")
    if not 0 <= row < pages.num_rows:
        raise IndexError(f"row {row} of a {pages.num_rows}-row chunk")
    k = pages.page_of(row)
    raw = reader.read(path, pages.offsets[k], pages.sizes[k])
    try:
        header = read_page_header(raw)
    except ThriftError as exc:
        raise TaliSourceError(f"{path}: corrupt page header at byte {pages.offsets[k]}: {exc}") from exc
    needs_dict = header.encoding in (PLAIN_DICTIONARY, RLE_DICTIONARY)
    dictionary = _dictionary(reader, path, pages) if needs_dict and pages.dictionary else None
    levels, values, _ = _page_values(raw, pages, dictionary)
    at = row - pages.first_rows[k]
    if at >= levels.size:
        raise TaliSourceError(f"{path}: page {k} holds {levels.size} values, row {row} expected in it")
    level = int(levels[at])
    if level != pages.max_def:
        return level, None
    return level, values[int((levels[:at] == pages.max_def).sum())]
