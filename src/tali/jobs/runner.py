"""Run a per-shard job over many shards: in parallel, resumable, with a progress bar.

Each shard's result is written as one *part* file in a parts directory,
atomically (written aside, then renamed), so an interrupted run leaves only
complete parts; running again skips every shard whose part exists
(:mod:`tali.jobs.parts` names them). Two runs writing one output take turns
(:func:`tali.atomic.exclusive`, held by ``validate``/``compute_metrics``), so
neither removes the other's parts. Workers report rows as they finish them, so
the progress bar moves per row, not per multi-gigabyte shard. Who runs the jobs
is an :class:`~tali.jobs.executors.Executor` (this process, a process pool, Ray).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from tali.errors import TaliConfigError
from tali.jobs.executors import Executor, Inline, ProcessPool, ShardJob, executor_for
from tali.jobs.parts import part_path

__all__ = ["run_shards"]


def _choose(executor: Executor | None, workers: int, ray: str | bool | None) -> Executor:
    if executor is not None:
        return executor
    if ray:
        return executor_for("ray", address=ray)
    return Inline() if workers <= 1 else ProcessPool(workers)


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
    executor: Executor | None = None,
) -> list[Path]:
    """Run ``job`` over ``shards`` (skipping those with a part already), return part paths in shard order.

    ``workers <= 1`` runs in this process (no pickling, easiest to debug).
    ``shard_rows`` (rows per shard, from footers) sizes the progress bar.
    ``ray`` (``True``: a local cluster, or an address) runs the jobs as Ray tasks
    instead (:mod:`tali.ray.jobs`); parts, resume and results are the same.
    ``executor`` overrides both.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise TaliConfigError(f"workers must be an int >= 0, got {workers!r}")
    chosen = _choose(executor, workers, ray)
    parts_dir.mkdir(parents=True, exist_ok=True)
    parts = [part_path(parts_dir, s, suffix) for s in shards]
    todo = [(s, p) for s, p in zip(shards, parts) if not p.exists()]
    total = None
    if shard_rows is not None:
        total = sum(rows for rows, part in zip(shard_rows, parts) if not part.exists())
    with _Bar(progress, total, description) as bar:
        chosen.run(job, todo, bar.advance)
    return parts


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
