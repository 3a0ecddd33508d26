"""The gallery's data: a split's rows as cards (title, languages, key metrics), sorted by any
scalar metadata or metrics column, filtered by the sandboxed ``--where`` of ``tali filter``,
one page at a time; and named selections written as the item-id index ``tali filter
--index`` writes, so ``TaliDataset(item_ids=load_index(path))`` trains on them.

Only server-written SQL runs here: the sort column must be one the ``rows`` view has (it is
quoted, never spliced), and a WHERE clause goes through :meth:`Catalog.filter` (the checks
and sandbox of ``tali filter``).
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tali.errors import TaliConfigError
from tali.sql.sandbox import sandboxed_connection
from tali.view.catalog import Catalog, RowNotFound, SplitView, clean_value

__all__ = ["GalleryPage", "Listing", "SelectionStore", "gallery_page", "listing"]

#: Metrics shown on a card when the table has them (the ones a researcher filters on first).
KEY_METRICS = (
    "video_duration_seconds",
    "video_width",
    "video_height",
    "audio_silence_ratio",
    "audio_rms_dbfs",
    "num_languages",
    "subtitle_lines",
)
MAX_PER_PAGE = 100
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: DuckDB types a card can be sorted by (lists and structs cannot be ordered meaningfully).
_SCALAR = re.compile(
    r"^(BIGINT|INTEGER|SMALLINT|TINYINT|HUGEINT|UBIGINT|UINTEGER|DOUBLE|FLOAT|REAL|DECIMAL.*|VARCHAR|BOOLEAN|DATE|TIMESTAMP.*)$"
)


@dataclass(frozen=True)
class Listing:
    """Every row of a split in one sort order: global indices and the cards' fields."""

    split: str
    sort: str
    descending: bool
    columns: tuple[str, ...]  # sortable columns of the rows view
    indices: np.ndarray  # int64 global rows, in sort order
    table: pa.Table  # the cards' fields, same order


def listing(catalog: Catalog, split: str, sort: str, descending: bool, metrics: str | None) -> Listing:
    """One server-written query over the split's ``rows`` view (metadata, and the metrics
    table when there is one): the whole split in ``sort`` order, media bytes never read."""
    view = catalog.split(split)
    view.require_local("the gallery")
    con = sandboxed_connection(list(view.files), metrics)
    try:
        described = con.execute("DESCRIBE rows").fetchall()
        columns = tuple(name for name, kind, *_ in described if _SCALAR.match(str(kind)))
        if sort not in columns:
            raise TaliConfigError(
                f"sort={sort[:60]!r} is not a column the gallery can sort by; choose one of: {', '.join(columns)}"
            )
        names = {name for name, *_ in described}
        shown = [m for m in KEY_METRICS if m in names]
        fields = ", ".join([*(f'"{m}"' for m in shown)])
        order = "DESC" if descending else "ASC"
        query = (
            "SELECT shard_path, row, item_idx, youtube_title_text AS title, "
            f'wit_features.language AS languages, wit_features.page_title[1] AS page_title, "{sort}" AS sort_value'
            + (f", {fields}" if fields else "")
            + f' FROM rows ORDER BY "{sort}" {order} NULLS LAST, shard_path, row'
        )
        table = con.sql(query).to_arrow_table()
    finally:
        con.close()
    offsets, first = {}, 0
    for shard in view.index.shards:
        offsets[os.path.realpath(shard.path)] = first
        first += shard.num_rows
    paths = table.column("shard_path").to_pylist()
    rows = table.column("row").to_numpy()
    try:
        starts = np.array([offsets[os.path.realpath(p)] for p in paths], dtype=np.int64)
    except KeyError as exc:  # pragma: no cover - the view reads only the split's shards
        raise RowNotFound(f"shard {exc} is not part of split {split!r}") from None
    return Listing(
        split, sort, descending, columns, starts + rows.astype(np.int64), table.drop(["shard_path"])
    )


@dataclass(frozen=True)
class GalleryPage:
    total: int  # rows that pass the filter
    page: int
    per_page: int
    cards: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        pages = max(1, -(-self.total // self.per_page))
        return {
            "total": self.total,
            "page": self.page,
            "pages": pages,
            "per_page": self.per_page,
            "cards": self.cards,
        }


def gallery_page(ordered: Listing, kept: list[int] | None, page: int, per_page: int) -> GalleryPage:
    """Page ``page`` (0-based) of the rows in ``ordered`` that are in ``kept`` (``None``: all)."""
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise TaliConfigError(f"per_page={per_page} must be in [1, {MAX_PER_PAGE}]")
    if page < 0:
        raise TaliConfigError(f"page={page} must be >= 0")
    positions = np.arange(ordered.indices.size)
    if kept is not None:
        positions = positions[np.isin(ordered.indices, np.asarray(kept, dtype=np.int64))]
    chosen = positions[page * per_page : (page + 1) * per_page]
    records = ordered.table.take(pa.array(chosen, pa.int64())).to_pylist() if chosen.size else []
    cards = []
    for position, record in zip(chosen.tolist(), records):
        languages = record.pop("languages") or []
        cards.append(
            {
                "index": int(ordered.indices[position]),
                "item_idx": record.pop("item_idx"),
                "shard_row": record.pop("row"),
                "title": record.pop("title") or "",
                "page_title": record.pop("page_title") or "",
                "languages": languages,
                "sort_value": clean_value(record.pop("sort_value")),
                "metrics": {k: clean_value(v) for k, v in record.items()},
            }
        )
    return GalleryPage(int(positions.size), page, per_page, cards)


class SelectionStore:
    """Named selections in one folder, each ``NAME.json`` in the format of ``tali filter
    --index`` (``{"split", "where", "read", "kept", "item_ids"}``). A name is a plain file
    name (letters, digits, ``_.-``); no path from a request is ever opened."""

    def __init__(self, folder: str | os.PathLike[str], catalog: Catalog) -> None:
        self.folder = Path(folder).resolve()
        self.catalog = catalog
        self._lock = threading.Lock()

    def _check_outside_sources(self) -> None:
        """A selection is never written into a dataset (checked at each save: the viewer
        still starts, and browses, from inside one)."""
        for view in self.catalog.splits.values():
            for shard in view.files:
                folder = Path(shard).resolve().parent
                source = folder.parent if folder.name == "data" else folder
                if self.folder == source or source in self.folder.parents:
                    raise TaliConfigError(
                        f"the selections folder {self.folder} lies inside the source {source}: "
                        "start tali view with --selections DIR outside it"
                    )

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise TaliConfigError(
                f"selection name {name[:70]!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        return self.folder / f"{name}.json"

    def save(
        self, name: str, view: SplitView, indices: list[int], where: str | None, read: int
    ) -> dict[str, Any]:
        """Write ``indices`` (global rows of ``view``) as selection ``name``; ``where``: the
        clause that chose them (a tagged set gets ``item_idx IN (...)``)."""
        from tali.quality.filter import FilterResult

        path = self._path(name)
        self._check_outside_sources()
        ids, rows = view.item_rows()
        item_of = np.empty(view.num_rows, dtype=np.int64)
        item_of[rows] = ids
        unique = sorted(set(indices))
        item_ids = [int(item_of[i]) for i in unique]
        if where is None:
            where = f"item_idx IN ({', '.join(map(str, item_ids))})" if item_ids else "false"
        positions: dict[str, list[int]] = {}
        for index in unique:
            shard, row = view.locate(index)
            positions.setdefault(view.files[shard], []).append(row)
        result = FilterResult(
            split=view.base or view.name,
            shards=list(view.files),
            read=read,
            positions=positions,
            item_ids=item_ids,
            where=where,
        )
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            result.write_index(path)
        return {"name": name, "path": str(path), "split": view.name, "kept": len(item_ids), "where": where}

    def list(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self.folder.is_dir():
            return out
        for path in sorted(self.folder.glob("*.json"))[:500]:
            if not _NAME.match(path.stem) or path.stat().st_size > 64 << 20:
                continue
            try:
                blob = json.loads(path.read_text())
                out.append(
                    {
                        "name": path.stem,
                        "path": str(path),
                        "split": blob.get("split"),
                        "kept": blob.get("kept"),
                        "where": blob.get("where"),
                    }
                )
            except (OSError, ValueError, AttributeError):
                continue
        return out
