"""Find the parquet shards of a split in a local source.

A source is a directory in the Hub's layout (``data/{split}-*.parquet``), a
directory of shards, one parquet file, or a list of files. Remote sources
(Hub ids, fsspec URLs) resolve to the same list of shard paths in
:mod:`tali.hub` and :mod:`tali.data.remote`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from tali.errors import TaliSchemaError, TaliSourceError
from tali.schema import foreign_shard

__all__ = ["SPLITS", "SourceLike", "available_splits", "refuse_foreign_shards", "resolve_local_files"]

SourceLike = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
SPLITS = ("train", "val", "test")
_SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-\d+-of-\d+\.parquet$")


def _split_files(root: Path, split: str) -> list[Path]:
    for pattern in (
        f"data/{split}-*.parquet",
        f"{split}-*.parquet",
        f"data/{split}/*.parquet",
        f"{split}/*.parquet",
    ):
        found = sorted(root.glob(pattern))
        if found:
            return found
    return []


def available_splits(root: str | os.PathLike[str]) -> list[str]:
    """Split names a local directory holds, from its shard file names (``data/val-00000-of-00001.parquet``)."""
    names: set[str] = set()
    for path in Path(root).glob("**/*.parquet"):
        match = _SHARD_RE.match(path.name)
        if match:
            names.add(match["split"])
        elif path.parent != Path(root) and path.parent.name != "data":  # data/{split}/*.parquet
            names.add(path.parent.name)
    return sorted(names)


def resolve_local_files(source: SourceLike, split: str | None = None) -> list[str]:
    """Shard paths, sorted, for ``split`` (``None``: every parquet file in the source)."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_file():
            return [str(path)]
        if not path.is_dir():
            raise TaliSourceError(f"no such file or directory: {path}")
        files: list[Path]
        if split is None:
            files = sorted(path.rglob("*.parquet"))
        else:
            files = _split_files(path, split)
        if not files:
            where = f"split {split!r} in " if split else ""
            found = available_splits(path)
            there = f"; splits there: {', '.join(found)}" if found else "; it holds no parquet shards"
            raise TaliSourceError(
                f"no parquet shards for {where}{path} (looked for data/{split or '*'}-*.parquet{there})"
            )
        return [str(f) for f in files]
    names = [str(Path(f)) for f in source]
    missing = [f for f in names if not Path(f).is_file()]
    if missing:
        raise TaliSourceError(f"parquet files not found: {', '.join(missing[:5])}")
    if not names:
        raise TaliSourceError("an empty list of files is not a source")
    return names


def refuse_foreign_shards(shards: Sequence[str], needed: Sequence[str]) -> None:
    """A parquet file that is not TALI at all (none of the ``needed`` columns) is one
    :class:`~tali.errors.TaliSchemaError` from its footer, not a failure of every check of
    every row. A partial shard (text columns only, say) is left to the per-shard report."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for shard in shards:
        try:
            names = pq.read_schema(shard).names
        except (OSError, pa.ArrowException):
            continue  # an unreadable footer is reported per shard by the run itself
        why = foreign_shard(names, needed)
        if why is not None:
            name = Path(shard).name
            raise TaliSchemaError(f"{name} is not a TALI shard: {why}", shard=name)
