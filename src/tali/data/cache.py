"""A bounded on-disk cache of decoded samples, for repeated epochs.

Entries are keyed by ``config.fingerprint()`` and the row's global index, plus
the epoch when the config makes random choices (a random window differs every
epoch, so only a deterministic config gets an epoch-2 speed-up; a random one
still gains on resume). A config change gives a new fingerprint, so stale
entries are never served; they are the first to go when space is needed.

Many DataLoader workers (and ranks on one machine) may write at once: each
entry is written to a private temporary file and ``os.replace``-d into place,
which is atomic on POSIX, so a reader sees a whole entry or none. Eviction is
least-recently-used by mtime (a hit touches the file); a file deleted by
another process mid-read is a miss, not an error.

Entries never execute code when read (a shared cache directory is untrusted):
they are safetensors files with a typed JSON manifest
(:mod:`tali.data.cache_format`), never pickles. A file that is not a
well-formed entry (torn, foreign, planted) is counted in ``corrupt``, removed
and decoded again; a sample holding a value the format cannot store is served
but not cached (``unstorable``).

Each entry is bound to what it was computed from: its row key, epoch scope, config
fingerprint and the source's identity (each shard's file name, size and row-group
layout, given by the loader through :meth:`SampleCache.bind`). An entry whose binding
is not the one asked for (row 5's valid entry copied over row 0's) is ``corrupt``,
never served. Sizes are checked before reading: a file over ``max_entry_bytes`` (a
sparse 64 GB "entry") is ``corrupt`` without a byte of it read into memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import uuid
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tali.config import TaliConfig
from tali.data.cache_format import CorruptEntry, Unstorable, _safetensors, decode_sample, encode_sample
from tali.errors import TaliConfigError
from tali.limits import ROW_MEMORY_BUDGET_BYTES
from tali.schema import SubModality

__all__ = ["SampleCache", "is_deterministic"]

S = SubModality


def is_deterministic(config: TaliConfig) -> bool:
    """Whether a row's sample is the same in every epoch under ``config``."""
    if config.wants(S.YOUTUBE_RANDOM_VIDEO_FRAME):
        return False
    clip_based = config.needs_clip or config.wants(S.YOUTUBE_SUBTITLE_TEXT)
    if clip_based and config.window.start == "random" and config.window.seconds is not None:
        return False
    if config.wants(S.YOUTUBE_CONTENT_VIDEO) and config.video.selection == "random":
        return False
    wiki = config.wants(S.WIKIPEDIA_CAPTION_TEXT, S.WIKIPEDIA_TITLE_TEXT, S.WIKIPEDIA_MAIN_BODY_TEXT)
    return not (wiki and config.text.language is not None and config.text.fallback == "random")


def _local_identity(path: str) -> list[Any]:
    """Size and a CRC of the parquet footer (it holds every column chunk's offsets and
    statistics, so rewritten rows change it even at the same size); empty when remote."""
    if "://" in path:
        return []
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(size - (64 << 10), 0))
            return [size, zlib.crc32(handle.read(64 << 10))]
    except OSError:
        return []


def source_identity(shards: Iterable[Any]) -> str:
    """A short hash of a source's shards: file name, row-group layout and, for local
    files, size and footer CRC; from a :class:`~tali.data.shards.ShardIndex`'s ``shards``
    or plain paths."""
    parts = []
    for shard in shards:
        path = str(getattr(shard, "path", shard))
        parts.append([Path(path).name, list(getattr(shard, "row_group_rows", ())), *_local_identity(path)])
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:16]


class SampleCache:
    """Decoded samples under ``root/<fingerprint>/``, at most ``max_bytes`` in total, at most
    ``max_entry_bytes`` per entry (default: the per-row memory budget)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        config: TaliConfig,
        *,
        max_bytes: int = 50 * 2**30,
        max_entry_bytes: int = ROW_MEMORY_BUDGET_BYTES,
        scan_every: int = 64,
    ) -> None:
        for name, value in (("max_bytes", max_bytes), ("max_entry_bytes", max_entry_bytes)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise TaliConfigError(f"SampleCache.{name} must be a positive int, got {value!r}")
        _safetensors()  # a missing extra fails here, not in a DataLoader worker's first put
        self.root = Path(root)
        self.fingerprint = config.fingerprint()
        self.source = "unbound"  # set by bind(..., source=) from the loader's shards
        self.deterministic = is_deterministic(config)
        self.max_bytes = max_bytes
        self.max_entry_bytes = min(max_entry_bytes, max_bytes)
        self.scan_every = scan_every
        self.hits = self.misses = self.writes = self.evicted = self.corrupt = self.unstorable = 0
        self.write_errors = 0
        self._since_scan = 0

    def bind(self, pipeline: Any, *, source: Any = None) -> None:
        """Key entries on a :class:`~tali.pipeline.Pipeline`'s decode stage (the loaders
        call this): the config's fingerprint for the plain decode, else one that also
        names the window choice; a perturbed window is never shared across epochs.
        ``source`` (a :class:`~tali.data.shards.ShardIndex` or shard paths) binds every
        entry to the shards its row keys index: another source's entries are misses."""
        self.fingerprint = pipeline.cache_fingerprint()
        self.deterministic = self.deterministic and pipeline.default_decode
        if source is not None:
            self.source = source_identity(getattr(source, "shards", source))

    def _scope(self, epoch: int) -> str:
        return "all-epochs" if self.deterministic else f"epoch-{int(epoch)}"

    def _binding(self, key: int, epoch: int) -> dict[str, Any]:
        return {
            "key": int(key),
            "scope": self._scope(epoch),
            "fingerprint": self.fingerprint,
            "source": self.source,
        }

    def path(self, key: int, epoch: int) -> Path:
        scope = self._scope(epoch)
        return self.root / self.fingerprint / scope / f"{int(key) // 4096:05d}" / f"{int(key)}.safetensors"

    def contains(self, key: int, epoch: int) -> bool:
        return self.path(key, epoch).is_file()

    def get(self, key: int, epoch: int) -> dict[str, Any] | None:
        path = self.path(key, epoch)
        try:
            data = self._read(path)
            sample = decode_sample(data, binding=self._binding(key, epoch))
            os.utime(path)  # LRU by mtime
        except FileNotFoundError:
            self.misses += 1
            return None
        except CorruptEntry:  # torn, foreign or planted: never trusted, decoded again
            with contextlib.suppress(OSError):  # a planted directory stays; it is never read
                path.unlink(missing_ok=True)
            self.corrupt += 1
            self.misses += 1
            return None
        self.hits += 1
        return sample

    def _read(self, path: Path) -> bytes:
        """The file's bytes, its kind and size checked on the open handle before any is read
        (O_NONBLOCK: a FIFO planted as an entry must not wait for a writer)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (IsADirectoryError, PermissionError) as exc:
            raise CorruptEntry(f"cannot be read as an entry: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise CorruptEntry("not a regular file (a directory, a link to a device, a FIFO)")
            if st.st_size > self.max_entry_bytes:
                raise CorruptEntry(f"{st.st_size} bytes, over max_entry_bytes={self.max_entry_bytes}")
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read(self.max_entry_bytes + 1)
        finally:
            os.close(fd)
        if len(data) > self.max_entry_bytes:
            raise CorruptEntry(f"grew past max_entry_bytes={self.max_entry_bytes} while read")
        return data

    def put(self, key: int, epoch: int, sample: dict[str, Any]) -> None:
        try:
            data = encode_sample(sample, binding=self._binding(key, epoch))
        except Unstorable:
            self.unstorable += 1
            return
        if len(data) > self.max_entry_bytes:
            self.unstorable += 1
            return
        path = self.path(key, epoch)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:  # a full disk, a directory planted at the entry's name: serve, do not cache
            self.write_errors += 1
            return
        finally:
            tmp.unlink(missing_ok=True)
        self.writes += 1
        self._since_scan += 1
        if self._since_scan >= self.scan_every:
            self.evict()

    def size_bytes(self) -> int:
        return sum(size for _, _, size in self._entries())

    def _entries(self) -> list[tuple[float, Path, int]]:
        out = []
        # ``*.pt``: pickled entries of an older tali, never read, evicted first.
        for path in [*self.root.rglob("*.safetensors"), *self.root.rglob("*.pt")]:
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            # Entries of other configs are stale: order them before every current one; so are
            # planted files (links, FIFOs, a sparse "entry" over max_entry_bytes), counted at
            # the disk space they take (st_blocks), not the size they claim.
            bad = not stat.S_ISREG(st.st_mode) or st.st_size > self.max_entry_bytes
            stale = bad or path.suffix == ".pt" or path.relative_to(self.root).parts[0] != self.fingerprint
            used = min(st.st_size, st.st_blocks * 512)
            out.append((float("-inf") if stale else st.st_mtime, path, used))
        return out

    def evict(self, *, target: float = 0.9) -> int:
        """Delete least recently used entries until the cache is under ``target * max_bytes``."""
        self._since_scan = 0
        entries = sorted(self._entries(), key=lambda e: e[0])
        total = sum(e[2] for e in entries)
        removed = 0
        if total <= self.max_bytes:
            return 0
        for _, path, size in entries:
            if total <= target * self.max_bytes:
                break
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:  # another worker got there first
                pass
            except OSError:  # a planted directory: not ours to delete
                continue
            total -= size
        self.evicted += removed
        return removed

    def __repr__(self) -> str:
        return (
            f"SampleCache({self.root}, fingerprint={self.fingerprint}, source={self.source}, "
            f"deterministic={self.deterministic}, max_bytes={self.max_bytes})"
        )
