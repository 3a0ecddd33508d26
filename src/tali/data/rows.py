"""Turn one parquet row into Python values without trusting its bytes.

``pyarrow`` does not validate UTF-8 when it reads a string column, so a
scraped shard can hold text that only fails when converted to ``str``
(``UnicodeDecodeError`` from deep inside ``to_pylist``). Converting here,
inside the bad-sample policy, turns that into a ``TaliSchemaError`` naming
the row and the column instead of a crash on row 731,902.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tali.errors import TaliSchemaError
from tali.schema import Column

__all__ = ["row_item_idx", "row_to_python", "row_to_python_lenient"]


def row_item_idx(table: pa.Table, offset: int) -> int | None:
    """The row's ``item_idx`` if the column exists and holds an integer, else ``None``."""
    if str(Column.ITEM_IDX) not in table.column_names:
        return None
    try:
        value = table.column(str(Column.ITEM_IDX))[offset].as_py()
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def row_to_python(table: pa.Table, offset: int) -> dict[str, Any]:
    """Row ``offset`` of ``table`` as a dict; a column that cannot become Python
    (invalid UTF-8, overflowing values) raises ``TaliSchemaError`` naming it."""
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


def row_to_python_lenient(table: pa.Table, offset: int) -> tuple[dict[str, Any], list[TaliSchemaError]]:
    """Like :func:`row_to_python`, but an unreadable column becomes ``None`` and its
    error is returned, so tools that measure a row (metrics) keep the other columns."""
    try:
        return row_to_python(table, offset), []
    except TaliSchemaError:
        pass
    piece = table.slice(offset, 1)
    out: dict[str, Any] = {}
    errors: list[TaliSchemaError] = []
    for name in piece.column_names:
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
