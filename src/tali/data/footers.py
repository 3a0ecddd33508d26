"""Shard footers and page tables, fetched once per machine and kept on disk.

TALI has 620 shards. Opening every footer in every rank and DataLoader worker
is ``620 x ranks x workers`` requests (what gets a job rate-limited by the Hub),
so a footer is read once, in one request (the file's last :data:`TAIL_BYTES`,
which usually also holds the page index), stored under
``$TALI_CACHE_DIR/index/`` keyed on the file's identity (path, size and ETag /
blob id / mtime), and shared by every process on the machine. The first process
of a split's pass holds a lock; the others wait and read what it wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tali.errors import TaliSourceError

__all__ = [
    "MAX_CACHE_BYTES",
    "TAIL_BYTES",
    "FileIdentity",
    "cache_root",
    "fetch_tails",
    "local_identity",
    "prune_cache",
]

#: One request reads this much of a shard's end: a TALI footer (17 row groups x 20 leaves)
#: plus its page index is ~100-300 KB; a longer footer costs one more request.
TAIL_BYTES = 512 * 1024
MAX_FOOTER_BYTES = 256 << 20
#: The footer cache's bound (``$TALI_INDEX_CACHE_BYTES`` overrides it): past it, the entries
#: least recently used are removed after a fetch pass and read again when next needed. TALI's
#: 620 shards take ~0.3 GB; without a bound, every dataset copy ever read stayed.
MAX_CACHE_BYTES = 2 << 30


@dataclass(frozen=True)
class FileIdentity:
    """What makes a shard the same shard: where it is, its size, and a version tag
    (the Hub's ETag / LFS sha256, or the local mtime)."""

    path: str
    size: int
    tag: str

    def key(self) -> str:
        text = json.dumps([self.path, self.size, self.tag])
        return hashlib.sha1(text.encode()).hexdigest()[:24]


def local_identity(path: str) -> FileIdentity:
    st = os.stat(path)
    return FileIdentity(os.path.realpath(path), st.st_size, f"mtime:{st.st_mtime_ns}")


def cache_root() -> Path:
    """``$TALI_CACHE_DIR/index`` (else ``$XDG_CACHE_HOME/tali/index``, else ``~/.cache/tali/index``)."""
    root = os.environ.get("TALI_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tali"
    )
    return Path(root) / "index"


def max_cache_bytes() -> int:
    value = os.environ.get("TALI_INDEX_CACHE_BYTES", "").strip()
    return int(value) if value.isdigit() else MAX_CACHE_BYTES


def _touch(path: Path) -> None:
    """Mark an entry used (its mtime orders :func:`prune_cache`'s removals)."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune_cache(root: Path | None = None, limit: int | None = None) -> int:
    """Remove the least recently used entries of the footer cache until it holds at most
    ``limit`` bytes (default :func:`max_cache_bytes`); returns the bytes removed. A reader in
    another process that loses an entry this way reads the footer again."""
    root = cache_root() if root is None else root
    limit = max_cache_bytes() if limit is None else limit
    entries = []
    try:
        with os.scandir(root) as listing:
            for entry in listing:
                if entry.name.startswith("."):  # locks and half-written files
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue
                entries.append((st.st_mtime_ns, st.st_size, entry.path))
    except OSError:
        return 0
    total = sum(size for _, size, _ in entries)
    removed = 0
    for _, size, path in sorted(entries):
        if total - removed <= limit:
            break
        try:
            os.unlink(path)
        except OSError:
            continue
        removed += size
    return removed


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _valid_tail(data: bytes) -> bool:
    return len(data) >= 12 and data[-4:] == b"PAR1"


def read_tail(read: Callable[[int, int], bytes], identity: FileIdentity) -> bytes:
    """The end of a parquet file holding its whole footer (one request, two if the footer
    is longer than :data:`TAIL_BYTES`), length-prefixed by where it starts in the file."""
    size = identity.size
    if size < 12:
        raise TaliSourceError(
            f"cannot read parquet footer of {identity.path}: {size} bytes is not a parquet file"
        )
    start = max(0, size - TAIL_BYTES)
    data = read(start, size - start)
    if not _valid_tail(data):
        raise TaliSourceError(
            f"cannot read parquet footer of {identity.path}: not a parquet file (no PAR1 at its end)"
        )
    (footer_len,) = struct.unpack("<I", data[-8:-4])
    if footer_len > MAX_FOOTER_BYTES or footer_len + 8 > size:
        raise TaliSourceError(
            f"cannot read parquet footer of {identity.path}: footer length {footer_len} is impossible for {size} bytes"
        )
    if footer_len + 8 > len(data):
        start = size - footer_len - 8
        data = read(start, footer_len + 8 - len(data)) + data
    return struct.pack("<Q", start) + data


def tail_footer(tail: bytes) -> tuple[int, bytes]:
    """``(file offset of the tail's first byte, tail bytes)``."""
    (start,) = struct.unpack("<Q", tail[:8])
    return start, tail[8:]


def fetch_tails(
    identities: Sequence[FileIdentity],
    read: Callable[[FileIdentity, int, int], bytes],
    *,
    max_workers: int = 16,
    cache: bool = True,
) -> list[bytes]:
    """Every shard's tail: from the disk cache, else fetched (in parallel threads) and stored.
    One process per split does the fetching; the others wait on its lock."""
    root = cache_root()
    if cache:
        root.mkdir(parents=True, exist_ok=True)
    out: list[bytes | None] = [None] * len(identities)

    def cached(i: int) -> bool:
        if not cache:
            return False
        path = root / f"{identities[i].key()}.tail"
        try:
            data = path.read_bytes()
        except OSError:
            return False
        if len(data) > 8 and _valid_tail(data[8:]):
            out[i] = data
            _touch(path)
            return True
        return False

    def fetch(i: int) -> None:
        ident = identities[i]
        data = read_tail(lambda o, n: read(ident, o, n), ident)
        if cache:
            _write_atomic(root / f"{ident.key()}.tail", data)
        out[i] = data

    missing = [i for i in range(len(identities)) if not cached(i)]
    if missing and cache:
        from tali.atomic import exclusive

        # keyed on the whole shard set, not on what is missing: a process that starts while the
        # first is half-way sees another missing set, and must still wait for the same pass
        split_key = hashlib.sha1("".join(ident.key() for ident in identities).encode()).hexdigest()[:16]
        with exclusive(root / f"pass-{split_key}", what="index"):
            missing = [i for i in missing if not cached(i)]  # another process may have done it
            _run(fetch, missing, max_workers)
            if missing:
                prune_cache(root)
    elif missing:
        _run(fetch, missing, max_workers)
    return [d for d in out if d is not None]


def _run(fn: Callable[[int], None], items: list[int], max_workers: int) -> None:
    if len(items) <= 1 or max_workers <= 1:
        for i in items:
            fn(i)
        return
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        list(pool.map(fn, items))


def footer_crc(tail: bytes) -> int:
    """A checksum of the footer: two shards with the same name and size but other rows differ."""
    _, data = tail_footer(tail)
    (footer_len,) = struct.unpack("<I", data[-8:-4])
    return zlib.crc32(data[-8 - footer_len :])


def load_json(path: Path) -> Any:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    _touch(path)
    return value


def store_json(path: Path, value: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps(value, separators=(",", ":")).encode())
    except OSError:  # a read-only cache costs a rebuild next time, not a failure
        pass
