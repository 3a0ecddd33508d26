"""Turn one parquet row into Python values without trusting its bytes.

``pyarrow`` does not validate UTF-8 when it reads a string column, so a
scraped shard can hold text that only fails when converted to ``str``
(``UnicodeDecodeError`` from deep inside ``to_pylist``). Converting here,
inside the bad-sample policy, turns that into a ``TaliSchemaError`` naming
the row and the column instead of a crash on row 731,902.

Nor is a value's size trusted: a 200 MB clip became a 200 MB ``bytes`` (and the
copies after it) before the decoder's byte limit refused it. Each value's size is
known from the Arrow buffers of the one-row slice (offsets, no copy), so a value over
its :class:`RowLimits` bound is refused *before* it becomes Python, with the error
the decoder would have raised (``TaliDecodeError`` for a clip, ``TaliSubtitleError``
for subtitles, ``TaliImageError`` for the image) naming the column.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tali.errors import TaliDataError, TaliDecodeError, TaliImageError, TaliSchemaError, TaliSubtitleError
from tali.limits import ClipLimits
from tali.schema import Column

__all__ = ["RowLimits", "row_item_idx", "row_to_python", "row_to_python_lenient"]


@dataclass(frozen=True, kw_only=True)
class RowLimits:
    """Bytes one value of a row may hold before it is converted to Python."""

    #: ``youtube_video_content`` (``VideoConfig.max_clip_bytes``).
    max_clip_bytes: int = ClipLimits.max_bytes
    #: ``youtube_subtitle_text`` (``TextConfig.max_subtitle_bytes``).
    max_subtitle_bytes: int = 4_000_000
    #: ``image`` and ``youtube_thumbnail`` (the encoded picture and its path).
    max_image_bytes: int = 64 << 20
    #: Any other column (titles, descriptions, WIT texts of every language, paths).
    max_value_bytes: int = 64 << 20
    #: One column of one row group, uncompressed, read whole (the row-group layout):
    #: checked from the footer before reading, so a hostile row group is refused, not
    #: allocated (the real TALI's are ~170 MB: 100 rows of ~1.7 MB).
    max_row_group_bytes: int = 4 << 30

    @classmethod
    def from_config(cls, config: Any) -> RowLimits:
        """The bounds a :class:`~tali.config.TaliConfig` sets (the rest: defaults)."""
        return cls(
            max_clip_bytes=config.video.max_clip_bytes, max_subtitle_bytes=config.text.max_subtitle_bytes
        )

    def check(self, table: pa.Table, offset: int, *, columns: Iterable[str] | None = None) -> None:
        """Refuse row ``offset`` of ``table`` when a value is over its bound (sizes from the
        Arrow buffers only). Per row group once: a column whose buffers hold no more than
        its bound cannot hold a value over it, and is not looked at row by row (the exact
        per-row size cost 210 us a text row, 15x its conversion; this costs ~1 us)."""
        suspects = self._suspects(table)
        if not suspects:
            return
        piece = table.slice(offset, 1)
        for name in suspects:
            if columns is not None and name not in columns:
                continue
            column = piece.column(name)
            if (
                pa.types.is_binary(column.type)
                or pa.types.is_string(column.type)
                or pa.types.is_large_binary(column.type)
                or pa.types.is_large_string(column.type)
            ):
                size = pc.sum(pc.binary_length(column)).as_py() or 0
            else:
                size = column.nbytes
            limit, error, message = self._bound(name)
            if size > limit:
                raise error(
                    message.format(size=size, limit=limit), item_idx=row_item_idx(table, offset), field=name
                )

    def _suspects(self, table: pa.Table) -> tuple[str, ...]:
        """Columns of ``table`` whose buffers exceed their bound (memoised for the last table)."""
        global _MEMO
        memo = _MEMO
        if memo is not None and memo[0]() is table and memo[1] == self:
            return memo[2]
        suspects = tuple(
            name
            for name in table.column_names
            if table.column(name).get_total_buffer_size() > self._bound(name)[0]
        )
        _MEMO = (weakref.ref(table), self, suspects)
        return suspects

    def _bound(self, name: str) -> tuple[int, type[TaliDataError], str]:
        """The bound, the error and its message: the decoder's own words for that column."""
        if name == str(Column.YOUTUBE_VIDEO_CONTENT):
            return self.max_clip_bytes, TaliDecodeError, "clip is {size} bytes, over the {limit}-byte limit"
        if name == str(Column.YOUTUBE_SUBTITLE_TEXT):
            message = "subtitles are {size} bytes of UTF-8, over the {limit} limit"
            return self.max_subtitle_bytes, TaliSubtitleError, message
        if name in (str(Column.IMAGE), "youtube_thumbnail"):
            return self.max_image_bytes, TaliImageError, "image is {size} bytes, over the {limit}-byte limit"
        return (
            self.max_value_bytes,
            TaliDataError,
            f"column {name} is {{size}} bytes, over the {{limit}}-byte limit",
        )


_DEFAULT = RowLimits()
#: (the last table checked, the limits, its suspect columns): rows come a row group at a time.
_MEMO: tuple[weakref.ref[pa.Table], RowLimits, tuple[str, ...]] | None = None


def row_item_idx(table: pa.Table, offset: int) -> int | None:
    """The row's ``item_idx`` if the column exists and holds an integer, else ``None``."""
    if str(Column.ITEM_IDX) not in table.column_names:
        return None
    try:
        value = table.column(str(Column.ITEM_IDX))[offset].as_py()
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def row_to_python(table: pa.Table, offset: int, *, limits: RowLimits | None = None) -> dict[str, Any]:
    """Row ``offset`` of ``table`` as a dict; a column that cannot become Python
    (invalid UTF-8, overflowing values) raises ``TaliSchemaError`` naming it, a value
    over ``limits`` (default: :class:`RowLimits`) the decoder's error, before conversion."""
    (limits or _DEFAULT).check(table, offset)
    piece = table.slice(offset, 1)
    try:
        return piece.to_pylist()[0]
    except (UnicodeDecodeError, ValueError, OverflowError):
        pass  # find the culprit column below
    out: dict[str, Any] = {}
    for name in piece.column_names:
        try:
            out[name] = piece.column(name)[0].as_py()
        except (UnicodeDecodeError, ValueError, OverflowError) as exc:
            raise TaliSchemaError(
                f"column {name} cannot be read as Python values: {type(exc).__name__}: {str(exc)[:120]}",
                item_idx=row_item_idx(table, offset),
                field=name,
            ) from None
    return out


def row_to_python_lenient(
    table: pa.Table, offset: int, *, limits: RowLimits | None = None
) -> tuple[dict[str, Any], list[TaliDataError]]:
    """Like :func:`row_to_python`, but an unreadable or oversized column becomes ``None``
    and its error is returned, so tools that measure a row (metrics) keep the other columns."""
    try:
        return row_to_python(table, offset, limits=limits), []
    except TaliDataError:
        pass
    piece = table.slice(offset, 1)
    out: dict[str, Any] = {}
    errors: list[TaliDataError] = []
    for name in piece.column_names:
        try:
            (limits or _DEFAULT).check(table, offset, columns=(name,))
        except TaliDataError as exc:
            out[name] = None
            errors.append(exc)
            continue
        try:
            out[name] = piece.column(name)[0].as_py()
        except (UnicodeDecodeError, ValueError, OverflowError) as exc:
            out[name] = None
            errors.append(
                TaliSchemaError(
                    f"column {name} cannot be read as Python values: {type(exc).__name__}: {str(exc)[:120]}",
                    item_idx=row_item_idx(table, offset),
                    field=name,
                )
            )
    return out, errors
