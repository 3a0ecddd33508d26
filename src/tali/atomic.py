"""Publishing files and directories atomically and serialising writers: the file-system rules
every tool that writes a user's data follows (stdlib only, so every layer may use them).

- :func:`write_bytes`, :func:`write_text`, :func:`write_parquet` and
  :func:`publishing` write a file aside and rename it into place: a reader never
  sees half a file, a failed writer leaves nothing under the final name.

- :func:`publish_dir` puts a fully written staging directory in place of a
  target in one step. On Linux it is one ``renameat2(RENAME_EXCHANGE)``: a
  reader sees the old tree or the new one, never a mix, never nothing. Where
  the kernel or file system cannot exchange, two renames leave a moment in
  which the target is absent (a reader then gets "not found", never a
  partial tree). The old tree is deleted only after the new one is in place.
- :func:`exclusive` is an ``fcntl`` lock on a lock file next to what is
  written, so two processes writing one output take turns instead of
  deleting each other's work. The kernel drops the lock when its holder
  dies, even by ``kill -9``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "exclusive",
    "publish_dir",
    "publishing",
    "remove_stale",
    "staging_dir",
    "write_bytes",
    "write_parquet",
    "write_text",
]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step; False where the platform cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(a))


def staging_dir(target: str | os.PathLike[str], label: str = "staging") -> Path:
    """A fresh hidden directory beside ``target`` (same file system, so it can be renamed in)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.parent / f".{target.name}.{label}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


def publish_dir(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Make the complete directory ``staging`` appear at ``target`` in one step,
    replacing what was there; the replaced tree is removed afterwards."""
    staging, target = Path(staging), Path(target)
    if not target.exists():
        os.replace(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old tree
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def publishing(partial: str | os.PathLike[str], final: str | os.PathLike[str]) -> Iterator[Path]:
    """Write ``partial`` inside the block: on success it replaces ``final`` in one rename, on
    any error (a kill leaves it as it was, named as partial) it is removed. A reader never
    sees half a file under ``final``'s name."""
    partial = Path(partial)
    try:
        yield partial
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _partial_of(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """``data`` at ``path``, whole or not at all (written aside, renamed)."""
    path = Path(path)
    with publishing(_partial_of(path), path) as partial:
        partial.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """``text`` (UTF-8) at ``path``, whole or not at all."""
    write_bytes(path, text.encode("utf-8"))


def write_parquet(path: str | os.PathLike[str], table: Any, **options: Any) -> None:
    """A ``pyarrow.Table`` as a parquet file at ``path``, whole or not at all
    (pyarrow imported here, so this module stays importable from every layer)."""
    import pyarrow.parquet as pq

    path = Path(path)
    with publishing(_partial_of(path), path) as partial:
        pq.write_table(table, partial, **options)


@contextlib.contextmanager
def exclusive(target: str | os.PathLike[str], *, what: str = "write") -> Iterator[Path]:
    """Hold an exclusive lock for writing ``target`` (the lock file is ``.<name>.lock`` beside it)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield lock_path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale(parent: str | os.PathLike[str], prefix: str) -> list[Path]:
    """Delete leftovers of killed writers (``prefix*`` in ``parent``); call under :func:`exclusive`."""
    removed = []
    for path in Path(parent).glob(f"{prefix}*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        removed.append(path)
    return removed
