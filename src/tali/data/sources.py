"""Find the parquet shards of a split in a local source.

A source is a directory in the Hub's layout (``data/{split}-*.parquet``), a
directory of shards, one parquet file, or a list of files. Remote sources
(Hub ids, fsspec URLs) resolve to the same list of shard paths in
:mod:`tali.hub` and :mod:`tali.data.remote`.

A directory's split is all there or refused: shards named
``{split}-{i:05d}-of-{n:05d}.parquet`` must be exactly ``0..n-1`` of one ``n``
(a writer killed mid-way, or a copy that stopped, used to load as a complete
split with a fraction of its rows). Hidden paths (``.staging``, ``.partial``)
are never shards.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from tali.errors import TaliSourceError

__all__ = ["SPLITS", "SourceLike", "check_complete", "resolve_local_files"]

SourceLike = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
SPLITS = ("train", "val", "test")


_NUMBERED = re.compile(r"^(?P<prefix>.+)-(?P<i>\d+)-of-(?P<n>\d+)\.parquet$")


def check_complete(files: Sequence[str | os.PathLike[str]]) -> None:
    """Raise :class:`TaliSourceError` listing the missing shards when the numbered
    shards of a split (``-{i}-of-{n}``) are not exactly ``0..n-1`` of one ``n``."""
    groups: dict[tuple[str, str], dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    width: dict[tuple[str, str], int] = {}
    for f in files:
        path = Path(f)
        m = _NUMBERED.match(path.name)
        if m:
            key = (str(path.parent), m["prefix"])
            groups[key][m["n"]].add(int(m["i"]))
            width[key] = len(m["i"])
    for (parent, prefix), by_total in groups.items():
        if len(by_total) > 1:
            raise TaliSourceError(
                f"{parent}: {prefix} shards from different writes are mixed "
                f"(-of-{', -of-'.join(sorted(by_total))}); the split is incomplete"
            )
        ((total, present),) = by_total.items()
        missing = sorted(set(range(int(total))) - present)
        extra = sorted(i for i in present if i >= int(total))
        if missing or extra:
            w = width[(parent, prefix)]
            names = [f"{prefix}-{i:0{w}d}-of-{total}.parquet" for i in missing[:10]]
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise TaliSourceError(
                f"{parent}: split {prefix} is incomplete: {len(missing)} of {int(total)} shards missing "
                f"({', '.join(names)}{more})" + (f"; unexpected shard numbers {extra[:10]}" if extra else "")
            )


def _visible(root: Path, paths: list[Path]) -> list[Path]:
    return [p for p in paths if not any(part.startswith(".") for part in p.relative_to(root).parts)]


def _split_files(root: Path, split: str) -> list[Path]:
    for pattern in (
        f"data/{split}-*.parquet",
        f"{split}-*.parquet",
        f"data/{split}/*.parquet",
        f"{split}/*.parquet",
    ):
        found = _visible(root, sorted(root.glob(pattern)))
        if found:
            return found
    return []


def resolve_local_files(source: SourceLike, split: str | None = None) -> list[str]:
    """Shard paths, sorted, for ``split`` (``None``: every parquet file in the source)."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_file():
            return [str(path)]
        if not path.is_dir():
            raise TaliSourceError(f"no such file or directory: {path}")
        if split is None:
            files = _visible(path, sorted(path.rglob("*.parquet")))
        else:
            files = _split_files(path, split)
        if not files:
            where = f"split {split!r} in " if split else ""
            raise TaliSourceError(
                f"no parquet shards for {where}{path} (looked for data/{split or '*'}-*.parquet)"
            )
        check_complete(files)
        return [str(f) for f in files]
    listed = [str(Path(f)) for f in source]
    missing = [f for f in listed if not Path(f).is_file()]
    if missing:
        raise TaliSourceError(f"parquet files not found: {', '.join(missing[:5])}")
    if not listed:
        raise TaliSourceError("an empty list of files is not a source")
    return listed
