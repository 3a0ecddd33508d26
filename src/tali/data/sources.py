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

import json
import os
from collections.abc import Sequence
from pathlib import Path

from tali.data import layout
from tali.errors import TaliSchemaError, TaliSourceError
from tali.schema import foreign_shard

__all__ = [
    "SPLITS",
    "SourceLike",
    "available_splits",
    "check_complete",
    "record_selection",
    "refuse_foreign_shards",
    "resolve_local_files",
]

SourceLike = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
SPLITS = ("train", "val", "test")


def check_complete(files: Sequence[str | os.PathLike[str]]) -> None:
    """Raise :class:`TaliSourceError` listing the missing shards when the numbered
    shards of a split (``-{i}-of-{n}``, any hash suffix) are not exactly ``0..n-1`` of one
    ``n``; shards chosen on purpose (:data:`SELECTION_FILE`) are not an error."""
    layout.check_complete([str(f) for f in files], deliberate=_deliberate_subset)


#: Written next to shards that ``tali download --split 'train[:5%]' --local-dir D`` chose
#: on purpose: the names of the shards of the selection (a subset, not a broken write).
SELECTION_FILE = ".tali-selection.json"


def record_selection(directory: str | os.PathLike[str], names: Sequence[str]) -> None:
    """Add ``names`` (shard file names in ``directory``) to its selection manifest, atomically."""
    path = Path(directory) / SELECTION_FILE
    chosen = set(_read_selection(path)) | set(names)
    tmp = path.with_name(f"{SELECTION_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(sorted(chosen), indent=1) + "\n")
    os.replace(tmp, path)


def _read_selection(path: Path) -> list[str]:
    try:
        names = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _deliberate_subset(parent: str, present: set[str]) -> bool:
    """Whether every numbered shard present was downloaded as part of a chosen subset
    (then missing shard numbers are the ones the user did not ask for)."""
    chosen = set(_read_selection(Path(parent) / SELECTION_FILE))
    numbered = {n for n in present if layout.numbered(n)}
    return bool(numbered) and numbered <= chosen


def _visible(root: Path, paths: list[Path]) -> list[Path]:
    return [p for p in paths if not any(part.startswith(".") for part in p.relative_to(root).parts)]


def _relative(root: Path) -> list[str]:
    """Parquet files under ``root`` as repo paths, through symlinked folders (a ``data`` link
    to another disk is common; ``Path.rglob`` does not follow them), each real folder once."""
    out: list[str] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link loop
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        out.extend((rel / f).as_posix() for f in files if f.endswith(".parquet"))
    return out


def _split_files(root: Path, split: str) -> list[Path]:
    card = root / "README.md"
    patterns = layout.card_data_files(card.read_text(errors="replace")) if card.is_file() else {}
    return [root / p for p in layout.match_split(_relative(root), split, patterns)]


def available_splits(root: str | os.PathLike[str]) -> list[str]:
    """Split names a local directory holds, from its shard paths (every naming the Hub uses:
    ``data/val-00000-of-00010-<hash>.parquet``, ``data/val/0.parquet``, ``default/val/0000.parquet``)."""
    base = Path(root)
    card = base / "README.md"
    patterns = layout.card_data_files(card.read_text(errors="replace")) if card.is_file() else {}
    return sorted(set(layout.available_splits(_relative(base))) | set(patterns))


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
            files = _visible(path, sorted(path.rglob("*.parquet")))
        else:
            files = _split_files(path, split)
        if not files:
            where = f"split {split!r} in " if split else ""
            found = available_splits(path)
            there = f"; splits there: {', '.join(found)}" if found else "; it holds no parquet shards"
            raise TaliSourceError(
                f"no parquet shards for {where}{path} (looked for data/{split or '*'}-*.parquet{there})"
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
