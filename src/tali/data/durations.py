"""A dataset's clip-length index, ``tali-durations.json`` next to its shards.

A text-only config never opens the mp4 (column projection keeps the clip bytes
unread), yet its subtitle window must be the window a video config gets for the
same seed, and that window depends on the clip's true length. The index holds
that length per ``item_idx``: written once per dataset by ``tali durations``
(``tali.quality.durations.write_durations``), read here when present. Without it
a text-only config assumes ``WindowConfig.nominal_clip_seconds`` (docs/BATCH.md).

The file is input, not truth: a length x10, x0.1, ``Infinity``, ``true`` or a
shuffled id moves a text-only window off the video window, and a file left from
before the shards changed does the same quietly. So (format version 2):

- lengths are grouped by the shard they came from, with that shard's size in bytes:
  a shard whose size changed, or that the index does not list, is *stale*, and its
  clips fall back to the nominal length, with a :class:`DurationsIndexWarning`;
- a SHA-256 digest of the lengths and identities detects an edited file (then the
  whole directory's index is ignored, with a warning);
- every value must be a finite number (not a bool) in ``[MIN_CLIP_SECONDS,
  max_clip_seconds]`` and every key a decimal ``item_idx``;
- the file is read only if it is a regular file of at most :data:`MAX_FILE_BYTES`
  (a symlink to ``/dev/zero`` or a FIFO is refused without reading).

A version-1 file (no identities, written by an older ``tali``) still works, value
checks included, with one warning that it cannot be checked against the shards.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "FILE_NAME",
    "MAX_FILE_BYTES",
    "MIN_CLIP_SECONDS",
    "VERSION",
    "DurationsIndexWarning",
    "digest",
    "load_durations",
    "read_index",
]

FILE_NAME = "tali-durations.json"
VERSION = 2
#: Largest index read (about 20 bytes a clip: 6 M clips in one directory).
MAX_FILE_BYTES = 128 << 20
#: Shortest length believed (a clip shorter than a millisecond holds no frame).
MIN_CLIP_SECONDS = 1e-3
#: Longest length believed whatever the file says it was written with (24 h).
MAX_CLIP_SECONDS = 86_400.0


class DurationsIndexWarning(UserWarning):
    """The index (or part of it) was not used: its clips get the nominal length."""


def digest(shards: Mapping[str, Any], max_clip_seconds: Any) -> str:
    """SHA-256 of the index's content, as written (canonical JSON)."""
    blob = json.dumps({"shards": shards, "max_clip_seconds": max_clip_seconds}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _warn(message: str) -> None:
    warnings.warn(message + "; those clips use WindowConfig.nominal_clip_seconds", DurationsIndexWarning, 3)


def read_index(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, read within bounds; ``None`` when there is none (absent),
    :class:`ValueError` naming why when it cannot be used."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot open it: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("it is not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise ValueError(f"it is {st.st_size} bytes, over the {MAX_FILE_BYTES}-byte limit")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"it grew past the {MAX_FILE_BYTES}-byte limit while read")
    try:
        blob = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"it is not JSON: {str(exc)[:80]}") from None
    if not isinstance(blob, dict):
        raise ValueError("it is not a JSON object")  # noqa: TRY004  (one "unusable" type)
    return blob


def _length(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and MIN_CLIP_SECONDS <= value <= limit else None


def valid_lengths(clips: Any, limit: float) -> tuple[dict[int, float], int]:
    """The well-formed entries of a ``{item_idx: seconds}`` object, and how many were not."""
    if not isinstance(clips, dict):
        return {}, 1
    out: dict[int, float] = {}
    bad = 0
    for key, value in clips.items():
        seconds = _length(value, limit)
        text = str(key)
        if seconds is None or not text.lstrip("-").isdigit() or len(text) > 20:
            bad += 1
            continue
        out[int(text)] = seconds
    return out, bad


def _shard_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _from_v2(path: Path, blob: dict[str, Any], shards: list[Path]) -> dict[int, float]:
    max_seconds = blob.get("max_clip_seconds")
    limit = _length(max_seconds, MAX_CLIP_SECONDS)
    recorded = blob.get("shards")
    if limit is None or not isinstance(recorded, dict):
        raise ValueError("it has no valid max_clip_seconds or shards")
    if blob.get("digest") != digest(recorded, max_seconds):
        raise ValueError("its digest does not match its content (edited or damaged since written)")
    merged: dict[int, float] = {}
    for shard in shards:
        entry = recorded.get(shard.name)
        if not isinstance(entry, dict):
            _warn(f"{path}: shard {shard.name} is not in the index (run `tali durations` again)")
            continue
        if entry.get("bytes") != _shard_size(shard):
            _warn(
                f"{path}: shard {shard.name} is {_shard_size(shard)} bytes, the index was written "
                f"for {entry.get('bytes')} (stale: run `tali durations` again)"
            )
            continue
        lengths, bad = valid_lengths(entry.get("clip_seconds"), limit)
        if bad:
            raise ValueError(f"shard {shard.name} has {bad} invalid lengths")
        merged.update(lengths)
    return merged


def load_durations(files: Iterable[str | os.PathLike[str]]) -> dict[int, float] | None:
    """Clip seconds by ``item_idx`` from the index in each local shard directory, for
    the shards in ``files`` whose identity it records; ``None`` when no directory has a
    usable one (remote shards: not looked for). Whatever is not used is named in a
    :class:`DurationsIndexWarning`, and its clips get the nominal length."""
    by_dir: dict[Path, list[Path]] = {}
    for f in files:
        if "://" not in str(f):
            by_dir.setdefault(Path(f).parent, []).append(Path(f))
    merged: dict[int, float] = {}
    found = False
    for directory in sorted(by_dir):
        path = directory / FILE_NAME
        try:
            blob = read_index(path)
            if blob is None:
                continue
            version = blob.get("version")
            if version == VERSION:
                merged.update(_from_v2(path, blob, by_dir[directory]))
            elif version == 1:
                lengths, bad = valid_lengths(blob.get("clip_seconds"), MAX_CLIP_SECONDS)
                _warn(
                    f"{path} is a version-1 index (no shard identities): it cannot be checked "
                    "against the shards; run `tali durations` again"
                    + (f"; {bad} invalid lengths left out" if bad else "")
                )
                merged.update(lengths)
            else:
                raise ValueError(f"its version {version!r} is not {VERSION}")
        except ValueError as exc:
            _warn(f"{path} is not used: {exc}")
            continue
        found = True
    return merged if found else None
