"""Run a per-shard job over many shards: in parallel, resumable, with a progress bar.

Each shard's result is written as one *part* file in a parts directory,
atomically (written aside, then renamed), so an interrupted run leaves only
complete parts; running again skips every shard whose part exists. A part's
name holds the shard's identity (size, mtime and a checksum of its parquet
footer), so a shard that changed since is recomputed, never served stale.
Two runs writing one output take turns (:func:`tali.atomic.exclusive`, held by
``validate``/``compute_metrics``), so neither removes the other's parts. Workers
report rows as they finish them through a queue, so the progress bar moves
per row, not per multi-gigabyte shard.

Workers are *spawned* (never forked from a process that may hold threads and
open decoders), and they do not re-run the caller's ``__main__``: a plain script
that calls ``validate(..., workers=8)`` at its top level, without an
``if __name__ == "__main__":`` guard, works (see :func:`tali._mp.main_not_rerun`).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import queue as queue_module
import shutil
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Self

import pyarrow as pa
import pyarrow.parquet as pq

from tali._mp import main_not_rerun
from tali.errors import TaliConfigError

__all__ = [
    "ShardJob",
    "atomic_write_bytes",
    "atomic_write_table",
    "part_path",
    "parts_dir_of",
    "remove_parts",
    "report_rows",
    "run_shards",
    "shard_identity",
]

#: ``job(shard_path, part_path)`` computes one shard and writes ``part_path`` atomically.
ShardJob = Callable[[str, Path], Any]

_progress_queue: Any = None  # set in worker processes by _init_worker


def _init_worker(progress_queue: Any) -> None:
    global _progress_queue
    _progress_queue = progress_queue


def report_rows(count: int) -> None:
    """Called by jobs after finishing ``count`` rows (a no-op without a progress bar)."""
    target = _progress_queue
    if target is None:
        return
    if callable(target):
        target(count)
    else:
        target.put(count)


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_table(path: Path, table: pa.Table) -> None:
    """Write a parquet file aside and rename it: readers never see half of it."""
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def run_shards(
    job: ShardJob,
    shards: Sequence[str],
    *,
    parts_dir: Path,
    suffix: str,
    workers: int = 1,
    shard_rows: Sequence[int] | None = None,
    progress: bool = False,
    description: str = "rows",
    ray: str | bool | None = None,
) -> list[Path]:
    """Run ``job`` over ``shards`` (skipping those with a part already), return part paths in shard order.

    ``workers <= 1`` runs in this process (no pickling, easiest to debug).
    ``shard_rows`` (rows per shard, from footers) sizes the progress bar.
    ``ray`` (``True``: a local cluster, or an address) runs the jobs as Ray tasks
    instead (:mod:`tali.ray.jobs`); parts, resume and results are the same.
    """
    if not isinstance(workers, int) or workers < 0:
        raise TaliConfigError(f"workers must be an int >= 0, got {workers!r}")
    parts_dir.mkdir(parents=True, exist_ok=True)
    parts = [part_path(parts_dir, s, suffix) for s in shards]
    todo = [(s, p) for s, p in zip(shards, parts) if not p.exists()]
    total = None
    if shard_rows is not None:
        total = sum(rows for rows, part in zip(shard_rows, parts) if not part.exists())
    bar = _Bar(progress, total, description)
    with bar:
        if ray:
            from tali.ray.jobs import run_shard_jobs

            run_shard_jobs(job, todo, address=ray, advance=bar.advance)
        elif workers <= 1:
            global _progress_queue
            _progress_queue = bar.advance
            try:
                for shard, part in todo:
                    job(shard, part)
            finally:
                _progress_queue = None
        else:
            context = multiprocessing.get_context("spawn")
            progress_queue = context.Queue()
            with ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(progress_queue,)
            ) as pool:
                with main_not_rerun(job):  # workers start during submit()
                    pending: set[Future] = {pool.submit(job, shard, part) for shard, part in todo}
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    _drain(progress_queue, bar)
                    for future in done:
                        future.result()  # re-raise a job's failure here
                _drain(progress_queue, bar)
    return parts


def _drain(progress_queue: Any, bar: _Bar) -> None:
    while True:
        try:
            bar.advance(progress_queue.get_nowait())
        except queue_module.Empty:
            return


class _Bar:
    """A rich progress bar, or nothing when ``enabled`` is False (tests, pipes)."""

    def __init__(self, enabled: bool, total: int | None, description: str) -> None:
        self.enabled = enabled
        self.total = total
        self.description = description
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Self:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def advance(self, count: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=count)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
