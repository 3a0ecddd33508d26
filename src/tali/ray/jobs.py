"""Per-shard jobs (validate, metrics, prepare) and ``tali filter --out``'s output shards as Ray
tasks: the ``"ray"`` executor of :mod:`tali.jobs`, registered here (the runner never imports
Ray), behind ``run_shards(ray=...)`` and ``write_shards(ray=...)``.

A job writes its part atomically and is idempotent, so a task whose worker
dies is simply run again (``max_retries``): the part is either absent or
complete, never half-written, and the rerun's output equals the first
attempt's. A job's own error (a :class:`~tali.errors.TaliError`) is not
retried; it is raised here as it was raised there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tali.jobs import register_executor
from tali.ray._backend import connect

__all__ = ["MAX_RETRIES", "RayExecutor", "run_shard_jobs"]

#: Retries of a task whose worker process died (killed, out of memory, node lost).
MAX_RETRIES = 3


def _run(job: Callable[[str, Path], Any], shard: str, part: str) -> str:
    job(shard, Path(part))
    return part


def run_shard_jobs(
    job: Callable[[str, Path], Any],
    todo: Sequence[tuple[str, Path]],
    *,
    address: str | bool = True,
    advance: Callable[[int], None] | None = None,
) -> None:
    """Run ``job(shard, part)`` for each pair as one Ray task (one CPU each); wait for all.

    ``advance(rows)`` moves a progress bar by a shard's row count as it completes.
    """
    if not todo:
        return
    ray = connect(address)
    task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(_run)
    job_ref = ray.put(job)
    pending = {task.remote(job_ref, shard, str(part)): shard for shard, part in todo}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                shard = pending.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    raise exc.cause from None  # the job's own exception, as a local run raises it
                if advance is not None:
                    advance(pq.ParquetFile(shard).metadata.num_rows)
    finally:
        # On any failure: stop the rest and wait for them, so no task is still writing
        # into the run's staging directory when the caller reports the failure.
        for ref in pending:
            ray.cancel(ref, force=True)
        if pending:
            ray.wait(list(pending), num_returns=len(pending), timeout=30)


@dataclass(frozen=True)
class RayExecutor:
    """:class:`tali.jobs.Executor` on Ray: ``address`` is ``True`` (a local cluster) or an address."""

    address: str | bool = True

    def run(
        self,
        job: Callable[[str, Path], Any],
        todo: Sequence[tuple[str, Path]],
        advance: Callable[[int], None],
    ) -> None:
        run_shard_jobs(job, todo, address=self.address, advance=advance)

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
        """One task per item (one CPU each, a dead worker's task retried); results in order."""
        if not items:
            return []
        ray = connect(self.address)
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)(fn)
        refs = [task.remote(*args) for args in items]
        try:
            return list(ray.get(refs))
        except BaseException as exc:
            # Whatever failed (a task, a worker past its retries, Ray itself, ^C): stop every
            # task and wait for them, so none writes into a staging directory the caller removes.
            for ref in refs:
                ray.cancel(ref, force=True)
            ray.wait(refs, num_returns=len(refs), timeout=30)
            if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, BaseException):
                raise exc.cause from None
            raise


register_executor("ray", RayExecutor)
