"""Where a per-shard job keeps its result: one *part* file per shard, named by the shard's identity.

A part's name holds the shard's full path and identity (size, mtime and a
checksum of its parquet footer), so a shard that changed since is recomputed,
never served stale, and two shards with one file name never collide.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zlib
from pathlib import Path
from typing import Any

__all__ = ["part_path", "parts_dir_of", "remove_parts", "shard_identity"]


def parts_dir_of(output: str | Path, settings: Any) -> Path:
    """Where a run writing ``output`` keeps per-shard parts. The name hashes the run's
    settings (JSON-able), so a rerun with other settings never reuses stale parts."""
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return Path(f"{output}.parts") / key


def remove_parts(output: str | Path) -> None:
    """Drop every parts directory of ``output`` once the final file is written."""
    shutil.rmtree(Path(f"{output}.parts"), ignore_errors=True)


def shard_identity(shard_path: str) -> str:
    """``size:mtime_ns:crc32(footer)`` of a shard; ``"unreadable"`` when it cannot be read
    (the job then reports that). A rewrite that keeps size and mtime still changes the footer."""
    try:
        with open(shard_path, "rb") as handle:
            st = os.fstat(handle.fileno())
            footer = b""
            if st.st_size >= 12:
                handle.seek(-8, os.SEEK_END)
                tail = handle.read(8)
                length = int.from_bytes(tail[:4], "little")
                if tail[4:] == b"PAR1" and 0 < length <= st.st_size - 12:
                    handle.seek(-8 - length, os.SEEK_END)
                    footer = handle.read(length)
            return f"{st.st_size}:{st.st_mtime_ns}:{zlib.crc32(footer):08x}"
    except OSError:
        return "unreadable"


def part_path(parts_dir: Path, shard_path: str, suffix: str) -> Path:
    """Part file for a shard. The name hashes the full path (two shards with one file
    name, ``train/0.parquet`` and ``val/0.parquet``, never collide) and the shard's
    :func:`shard_identity` (a changed shard never reuses an old part)."""
    key = f"{Path(shard_path).resolve()}\0{shard_identity(shard_path)}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return parts_dir / f"{Path(shard_path).stem}-{digest}{suffix}"
