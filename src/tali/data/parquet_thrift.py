"""The few parquet footer structures pyarrow does not expose, read from their Thrift bytes.

pyarrow (26) reads whole column chunks and gives no page locations: not the
``OffsetIndex`` (where each page starts and its first row), nor the page headers.
Reading one row of a 100-row row group of ~1.7 MB clips needs exactly those, so
this module decodes Thrift's compact protocol generically (a struct is a
``{field id: value}`` dict) and names the handful of fields the page reader uses.
Written by hand because the alternatives measured worse: ``fastparquet`` brings
pandas into the core install for its Thrift classes, ``thriftpy2`` needs the
IDL at run time. Hostile bytes end in :class:`ThriftError`, never a hang: every
length is bounded by the buffer, every container by ``MAX_CONTAINER``, nesting by
``MAX_DEPTH``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ColumnChunkLocation",
    "PageHeader",
    "ThriftError",
    "read_footer_locations",
    "read_offset_index",
    "read_page_header",
    "read_struct",
]

MAX_CONTAINER = 1 << 22  # elements in one list/map: a 620-shard footer has far fewer
MAX_DEPTH = 32


class ThriftError(ValueError):
    """Bytes that are not the Thrift structure expected (truncated, corrupt or hostile)."""


class _Truncated(ThriftError):
    pass


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes | memoryview, pos: int = 0) -> None:
        self.buf = memoryview(buf)
        self.pos = pos

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise _Truncated("thrift data ends early")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ThriftError("thrift varint longer than 10 bytes")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise _Truncated(f"thrift field of {n} bytes runs past the data")
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out


def _value(r: _Reader, kind: int, depth: int) -> Any:
    if kind in (1, 2):  # a bool inside a container is one byte
        return r.byte() == 1
    if kind == 3:
        b = r.byte()
        return b - 256 if b > 127 else b
    if kind in (4, 5, 6):
        return r.zigzag()
    if kind == 7:
        return struct.unpack("<d", r.take(8))[0]
    if kind == 8:
        return r.take(r.varint())
    if kind in (9, 10):
        return _list(r, depth)
    if kind == 11:
        size = r.varint()
        if size > MAX_CONTAINER:
            raise ThriftError(f"thrift map of {size} entries")
        if size == 0:
            return {}
        kinds = r.byte()
        return {_value(r, kinds >> 4, depth + 1): _value(r, kinds & 0x0F, depth + 1) for _ in range(size)}
    if kind == 12:
        return _struct(r, depth + 1)
    raise ThriftError(f"unknown thrift type {kind}")


def _list(r: _Reader, depth: int) -> list[Any]:
    head = r.byte()
    size, kind = head >> 4, head & 0x0F
    if size == 15:
        size = r.varint()
    if size > MAX_CONTAINER or size > len(r.buf) - r.pos + 1:
        raise ThriftError(f"thrift list of {size} elements in {len(r.buf) - r.pos} bytes")
    return [_value(r, kind, depth + 1) for _ in range(size)]


def _struct(r: _Reader, depth: int) -> dict[int, Any]:
    if depth > MAX_DEPTH:
        raise ThriftError(f"thrift structs nested deeper than {MAX_DEPTH}")
    out: dict[int, Any] = {}
    last = 0
    while True:
        head = r.byte()
        if head == 0:
            return out
        delta, kind = head >> 4, head & 0x0F
        field = last + delta if delta else r.zigzag()
        if kind in (1, 2):  # a bool field carries its value in the type nibble
            out[field] = kind == 1
        else:
            out[field] = _value(r, kind, depth)
        last = field


def read_struct(buf: bytes | memoryview, pos: int = 0) -> tuple[dict[int, Any], int]:
    """One compact-protocol struct at ``pos``: ``({field id: value}, end position)``."""
    r = _Reader(buf, pos)
    try:
        return _struct(r, 0), r.pos
    except RecursionError as exc:  # pragma: no cover - MAX_DEPTH stops it first
        raise ThriftError("thrift structs nested too deep") from exc


# -- the parquet structures ---------------------------------------------------------------------


@dataclass(frozen=True)
class PageHeader:
    """A page header's fields the reader needs (parquet.thrift ``PageHeader``)."""

    type: int  # 0 DATA_PAGE, 2 DICTIONARY_PAGE, 3 DATA_PAGE_V2
    uncompressed_size: int
    compressed_size: int
    num_values: int
    encoding: int  # 0 PLAIN, 2 PLAIN_DICTIONARY, 8 RLE_DICTIONARY, ...
    header_size: int
    num_rows: int | None = None  # v2 only
    def_levels_bytes: int = 0  # v2 only: levels are stored uncompressed before the values
    rep_levels_bytes: int = 0
    is_compressed: bool = True

    DATA, DICTIONARY, DATA_V2 = 0, 2, 3


def read_page_header(buf: bytes | memoryview) -> PageHeader:
    """The page header at the start of ``buf``; :class:`ThriftError` if ``buf`` is too short
    (the caller reads more) or not a page header."""
    fields, end = read_struct(buf)
    try:
        kind, uncompressed, compressed = int(fields[1]), int(fields[2]), int(fields[3])
    except KeyError as exc:
        raise ThriftError(f"page header lacks field {exc}") from exc
    if uncompressed < 0 or compressed < 0:
        raise ThriftError("page header with a negative size")
    if kind == PageHeader.DATA and 5 in fields:
        h = fields[5]
        return PageHeader(kind, uncompressed, compressed, int(h.get(1, 0)), int(h.get(2, 0)), end)
    if kind == PageHeader.DICTIONARY and 7 in fields:
        h = fields[7]
        return PageHeader(kind, uncompressed, compressed, int(h.get(1, 0)), int(h.get(2, 0)), end)
    if kind == PageHeader.DATA_V2 and 8 in fields:
        h = fields[8]
        return PageHeader(
            kind,
            uncompressed,
            compressed,
            int(h.get(1, 0)),
            int(h.get(4, 0)),
            end,
            num_rows=int(h.get(3, 0)),
            def_levels_bytes=int(h.get(5, 0)),
            rep_levels_bytes=int(h.get(6, 0)),
            is_compressed=bool(h.get(7, True)),
        )
    return PageHeader(kind, uncompressed, compressed, 0, 0, end)  # index or unknown page: skipped


def is_truncated(exc: ThriftError) -> bool:
    """Whether more bytes could complete the structure (read further and try again)."""
    return isinstance(exc, _Truncated)


@dataclass(frozen=True)
class ColumnChunkLocation:
    """Where a column chunk's pages and offset index are (``ColumnChunk``/``ColumnMetaData``)."""

    path: tuple[str, ...]
    codec: int  # 0 none, 1 snappy, 2 gzip, 4 brotli, 5 lz4 (hadoop), 6 zstd, 7 lz4 raw
    num_values: int
    data_page_offset: int
    dictionary_page_offset: int | None
    total_compressed_size: int
    offset_index: tuple[int, int] | None  # (offset, length) in the file


def read_footer_locations(footer: bytes | memoryview) -> list[list[ColumnChunkLocation]]:
    """Per row group, per leaf column, where its bytes are (from ``FileMetaData``)."""
    meta, _ = read_struct(footer)
    out: list[list[ColumnChunkLocation]] = []
    for group in meta.get(4, []):
        columns = []
        for chunk in group.get(1, []):
            md = chunk.get(3) or {}
            dict_offset = md.get(11)
            oi = (int(chunk[4]), int(chunk[5])) if 4 in chunk and 5 in chunk else None
            columns.append(
                ColumnChunkLocation(
                    path=tuple(p.decode("utf-8", "replace") for p in md.get(3, [])),
                    codec=int(md.get(4, 0)),
                    num_values=int(md.get(5, 0)),
                    data_page_offset=int(md.get(9, 0)),
                    dictionary_page_offset=int(dict_offset) if dict_offset is not None else None,
                    total_compressed_size=int(md.get(7, 0)),
                    offset_index=oi,
                )
            )
        out.append(columns)
    return out


def read_offset_index(buf: bytes | memoryview) -> list[tuple[int, int, int]]:
    """``OffsetIndex``: ``(offset, compressed page size incl. header, first row)`` per data page."""
    fields, _ = read_struct(buf)
    return [(int(p[1]), int(p[2]), int(p[3])) for p in fields.get(1, [])]
