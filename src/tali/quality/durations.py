"""Write a dataset's clip-length index (``tali durations``): one demux per clip, no decoding.

The lengths are what ``TaliTransform`` computes when it opens a clip
(``tali.decode.index.clip_seconds``: where the last frame ends), so a text-only
config that reads them draws exactly the window a video config draws.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tali.data.durations import FILE_NAME, MAX_CLIP_SECONDS, MIN_CLIP_SECONDS, VERSION, digest, read_index
from tali.data.sources import resolve_local_files
from tali.decode.clip import open_clip
from tali.decode.index import clip_seconds
from tali.errors import TaliConfigError, TaliDataError
from tali.schema import Column

__all__ = ["write_durations"]


def write_durations(
    source: str | os.PathLike[str], *, split: str | None = None, max_clip_seconds: float = 600.0
) -> list[Path]:
    """Index every clip of ``source`` (a dataset directory or shard; ``split`` limits it) and
    write ``tali-durations.json`` into each shard directory, atomically. Lengths are grouped
    by shard with the shard's size (the loader ignores a shard that changed since) and the
    file carries a digest of its content. Clips that cannot be opened, or span more than
    ``max_clip_seconds``, are left out (the loader then uses the nominal length for them).
    Returns the files written."""
    if not (
        isinstance(max_clip_seconds, int | float) and MIN_CLIP_SECONDS < max_clip_seconds <= MAX_CLIP_SECONDS
    ):
        raise TaliConfigError(
            f"max_clip_seconds must be in ({MIN_CLIP_SECONDS}, {MAX_CLIP_SECONDS}], got {max_clip_seconds!r}"
        )
    max_clip_seconds = float(max_clip_seconds)
    by_dir: dict[Path, dict[str, dict[str, Any]]] = defaultdict(dict)
    for name in resolve_local_files(source, split):
        path = Path(name)
        table = pq.ParquetFile(path)
        lengths: dict[str, float] = {}
        by_dir[path.parent][path.name] = {"bytes": path.stat().st_size, "clip_seconds": lengths}
        for group in range(table.num_row_groups):
            columns = [str(Column.ITEM_IDX), str(Column.YOUTUBE_VIDEO_CONTENT)]
            for row in table.read_row_group(group, columns=columns).to_pylist():
                item_idx = row[str(Column.ITEM_IDX)]
                if not isinstance(item_idx, int):
                    continue
                try:
                    with open_clip(row[str(Column.YOUTUBE_VIDEO_CONTENT)], item_idx=item_idx) as clip:
                        seconds = clip_seconds(clip, max_clip_seconds)
                except TaliDataError:
                    continue
                if MIN_CLIP_SECONDS <= seconds <= max_clip_seconds:
                    lengths[str(item_idx)] = seconds
    written = []
    for directory, shards in by_dir.items():
        target = directory / FILE_NAME
        recorded = {**_kept(directory, target, max_clip_seconds), **shards}
        blob = {
            "version": VERSION,
            "max_clip_seconds": max_clip_seconds,
            "shards": recorded,
            "digest": digest(recorded, max_clip_seconds),
        }
        fd, tmp = tempfile.mkstemp(prefix=".tali-durations-", dir=directory)
        with os.fdopen(fd, "w") as out:
            json.dump(blob, out, sort_keys=True)
        os.replace(tmp, target)
        written.append(target)
    return written


def _kept(directory: Path, target: Path, max_clip_seconds: float) -> dict[str, dict[str, Any]]:
    """Shards another run indexed (several splits share a directory) that are unchanged since
    and were indexed with the same ``max_clip_seconds``; nothing from an unusable file."""
    try:
        old = read_index(target)
    except ValueError:
        return {}
    if (
        old is None
        or old.get("version") != VERSION
        or old.get("max_clip_seconds") != max_clip_seconds
        or not isinstance(old.get("shards"), dict)
        or old.get("digest") != digest(old["shards"], max_clip_seconds)
    ):
        return {}
    kept = {}
    for name, entry in old["shards"].items():
        shard = directory / str(name)
        if isinstance(entry, dict) and shard.is_file() and entry.get("bytes") == shard.stat().st_size:
            kept[str(name)] = entry
    return kept
