"""A dataset's clip-length index, ``tali-durations.json`` next to its shards.

A text-only config never opens the mp4 (column projection keeps the clip bytes
unread), yet its subtitle window must be the window a video config gets for the
same seed, and that window depends on the clip's true length. The index holds
that length per ``item_idx``: written once per dataset by ``tali durations``
(``tali.quality.durations.write_durations``), read here when present. Without it
a text-only config assumes ``WindowConfig.nominal_clip_seconds`` (docs/BATCH.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["FILE_NAME", "VERSION", "load_durations"]

FILE_NAME = "tali-durations.json"
VERSION = 1


def load_durations(files: Iterable[str | os.PathLike[str]]) -> dict[int, float] | None:
    """Clip seconds by ``item_idx`` from the index in each local shard directory; ``None``
    when no directory has one (remote shards: not looked for). An unreadable or foreign
    file counts as absent, so the loader falls back to the nominal length rather than fail."""
    merged: dict[int, float] = {}
    found = False
    for directory in sorted({Path(f).parent for f in files if "://" not in str(f)}):
        path = directory / FILE_NAME
        try:
            blob = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(blob, dict) or blob.get("version") != VERSION:
            continue
        clips = blob.get("clip_seconds")
        if not isinstance(clips, dict):
            continue
        found = True
        for key, value in clips.items():
            if isinstance(value, int | float) and value > 0 and str(key).lstrip("-").isdigit():
                merged[int(key)] = float(value)
    return merged if found else None
