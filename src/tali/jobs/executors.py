"""How per-shard jobs are run: an :class:`Executor` takes ``(shard, part)`` pairs and runs
``job(shard, part)`` for each, moving a progress bar as rows finish.

Two live here (:class:`Inline`, :class:`ProcessPool`); others register themselves from the
layer above with :func:`register_executor` (``tali.ray.jobs`` registers ``"ray"``), so this
floor never imports them. :func:`executor_for` imports a known plugin's module by name the
first time it is asked for (an ``importlib`` call, not an import arrow: the runner works,
and is importable, without Ray installed).

Pool workers are *spawned* (never forked from a process that may hold threads and
open decoders), and they do not re-run the caller's ``__main__``: a plain script
that calls ``validate(..., workers=8)`` at its top level, without an
``if __name__ == "__main__":`` guard, works (see :func:`tali._mp.main_not_rerun`).
"""

from __future__ import annotations

import importlib
import multiprocessing
import queue as queue_module
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tali._mp import main_not_rerun
from tali.errors import TaliConfigError

__all__ = [
    "Executor",
    "Inline",
    "ProcessPool",
    "ShardJob",
    "executor_for",
    "register_executor",
    "report_rows",
]

#: ``job(shard_path, part_path)`` computes one shard and writes ``part_path`` atomically.
ShardJob = Callable[[str, Path], Any]
#: ``advance(rows)`` moves the progress bar.
Advance = Callable[[int], None]


class Executor(Protocol):
    """Runs independent tasks: ``run`` the per-shard jobs of ``todo`` (moving ``advance``),
    ``map`` any picklable ``fn`` over argument tuples (results in order). Both raise the
    first task's own error and leave no task running behind them."""

    def run(self, job: ShardJob, todo: Sequence[tuple[str, Path]], advance: Advance) -> None: ...

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]: ...


_progress_sink: Any = None  # in a worker: a queue (pool) or the bar's advance (inline)


def _init_worker(progress_queue: Any) -> None:
    global _progress_sink
    _progress_sink = progress_queue


def report_rows(count: int) -> None:
    """Called by jobs after finishing ``count`` rows (a no-op without a progress bar)."""
    target = _progress_sink
    if target is None:
        return
    if callable(target):
        target(count)
    else:
        target.put(count)


@dataclass(frozen=True)
class Inline:
    """In this process, one shard after another (no pickling, easiest to debug)."""

    def run(self, job: ShardJob, todo: Sequence[tuple[str, Path]], advance: Advance) -> None:
        global _progress_sink
        _progress_sink = advance
        try:
            for shard, part in todo:
                job(shard, part)
        finally:
            _progress_sink = None

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
        return [fn(*args) for args in items]


@dataclass(frozen=True)
class ProcessPool:
    """``workers`` spawned processes; rows reported through a queue, drained every 0.2 s."""

    workers: int

    def run(self, job: ShardJob, todo: Sequence[tuple[str, Path]], advance: Advance) -> None:
        context = multiprocessing.get_context("spawn")
        progress_queue = context.Queue()
        with ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=_init_worker, initargs=(progress_queue,)
        ) as pool:
            with main_not_rerun(job):  # workers start during submit()
                pending: set[Future] = {pool.submit(job, shard, part) for shard, part in todo}
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_queue, advance)
                for future in done:
                    future.result()  # re-raise a job's failure here
            _drain(progress_queue, advance)

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]]) -> list[Any]:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
            with main_not_rerun(fn):
                futures = [pool.submit(fn, *args) for args in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


def _drain(progress_queue: Any, advance: Advance) -> None:
    while True:
        try:
            advance(progress_queue.get_nowait())
        except queue_module.Empty:
            return


_FACTORIES: dict[str, Callable[..., Executor]] = {}
#: Executors defined above this floor: the module that registers each, imported on first use.
_PLUGINS = {"ray": "tali.ray.jobs"}


def register_executor(name: str, factory: Callable[..., Executor]) -> None:
    """Make ``executor_for(name, **options)`` build executors with ``factory(**options)``."""
    _FACTORIES[name] = factory


def executor_for(name: str, **options: Any) -> Executor:
    """The executor registered as ``name`` (``"inline"``, ``"pool"``, ``"ray"``), built with ``options``."""
    if name not in _FACTORIES and name in _PLUGINS:
        importlib.import_module(_PLUGINS[name])
    factory = _FACTORIES.get(name)
    if factory is None:
        known = sorted({*_FACTORIES, *_PLUGINS})
        raise TaliConfigError(f"no job executor named {name!r}; choose from {', '.join(known)}")
    return factory(**options)


register_executor("inline", Inline)
register_executor("pool", ProcessPool)
