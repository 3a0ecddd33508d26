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

import pyarrow.parquet as pq

from tali.data.durations import FILE_NAME, VERSION
from tali.data.sources import resolve_local_files
from tali.decode.clip import open_clip
from tali.decode.index import clip_seconds
from tali.errors import TaliDataError
from tali.schema import Column

__all__ = ["write_durations"]


def write_durations(
    source: str | os.PathLike[str], *, split: str | None = None, max_clip_seconds: float = 600.0
) -> list[Path]:
    """Index every clip of ``source`` (a dataset directory or shard; ``split`` limits it) and
    write ``tali-durations.json`` into each shard directory, atomically. Clips that cannot
    be opened, or span more than ``max_clip_seconds``, are left out (the loader then uses
    the nominal length for them). Returns the files written."""
    by_dir: dict[Path, dict[str, float]] = defaultdict(dict)
    for name in resolve_local_files(source, split):
        path = Path(name)
        table = pq.ParquetFile(path)
        lengths = by_dir[path.parent]
        for group in range(table.num_row_groups):
            columns = [str(Column.ITEM_IDX), str(Column.YOUTUBE_VIDEO_CONTENT)]
            for row in table.read_row_group(group, columns=columns).to_pylist():
                item_idx = row[str(Column.ITEM_IDX)]
                if not isinstance(item_idx, int):
                    continue
                try:
                    with open_clip(row[str(Column.YOUTUBE_VIDEO_CONTENT)], item_idx=item_idx) as clip:
                        lengths[str(item_idx)] = clip_seconds(clip, max_clip_seconds)
                except TaliDataError:
                    continue
    written = []
    for directory, lengths in by_dir.items():
        target = directory / FILE_NAME
        previous: dict[str, float] = {}
        try:  # several splits share a directory: keep what another run indexed
            old = json.loads(target.read_text())
            if old.get("version") == VERSION and isinstance(old.get("clip_seconds"), dict):
                previous = old["clip_seconds"]
        except (OSError, ValueError, AttributeError):
            pass
        blob = {"version": VERSION, "clip_seconds": {**previous, **lengths}}
        fd, tmp = tempfile.mkstemp(prefix=".tali-durations-", dir=directory)
        with os.fdopen(fd, "w") as out:
            json.dump(blob, out, sort_keys=True)
        os.replace(tmp, target)
        written.append(target)
    return written
