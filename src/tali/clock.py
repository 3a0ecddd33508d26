"""Per-sample stage clocks: the one piece of monitoring that runs inside decoding.

Decoding code marks its stages with ``with timed(Stage.VIDEO_DECODE):``. When no
clock is active (monitoring off, the default) ``timed`` returns one shared no-op
context manager, so the cost is a global read and a call (~120 ns; on: ~750 ns
per block, measured with ``timeit`` by benchmarks/observe/overhead.py, against
50-150 ms to decode a sample).

When :class:`~tali.data.dataset.TaliDataset` is built with ``collect_stats=True``
it starts a :class:`StageClock` around each ``__getitem__`` and attaches the clock's
totals to the sample under ``"stats"``. Stats therefore travel *inside samples*,
exactly like the bad-sample records of :mod:`tali.data.policy`: they cross
DataLoader worker processes and ranks with the data, need no shared memory, no
extra queue and no locks, and are exact (one entry per sample that reached the
training loop). :class:`~tali.observe.monitor.Monitor` pops and totals them.

This module depends on the standard library and torch only, so the lowest layers
(transform, dataset) can import it.
"""

from __future__ import annotations

import contextvars
import enum
import os
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import torch
import torch.utils.data

__all__ = [
    "STAGES",
    "STATS_KEY",
    "Stage",
    "StageClock",
    "activate",
    "active_clock",
    "add_bytes",
    "timed",
    "with_stats",
]

STATS_KEY = "stats"


class Stage(enum.IntEnum):
    """Where a sample's time goes; the value is the column in the stats matrix."""

    READ = 0  # parquet row group read + slice to Python values
    OPEN = 1  # mp4 container open and stream probe
    VIDEO_DECODE = 2  # seek, decode, scale + convert chosen frames (incl. single frames)
    AUDIO_DECODE = 3  # window audio decode + resample
    IMAGE_DECODE = 4  # Wikipedia image / stored thumbnail decode + resize
    TEXT = 5  # subtitles YAML, WIT texts, titles
    PROCESSORS = 6  # user/model processors after decoding
    COLLATE = 7  # batching (per batch; recorded on the batch's first sample)

    @property
    def label(self) -> str:
        return self.name.lower()


STAGES: tuple[Stage, ...] = tuple(Stage)

#: A context variable, not a global: threads (a user's decode pool, a prefetch
#: thread) each see their own clock, or none.
_ACTIVE: contextvars.ContextVar[StageClock | None] = contextvars.ContextVar("tali_stage_clock", default=None)


class StageClock:
    """Nanoseconds and call counts per :class:`Stage`, plus bytes read, for one sample."""

    __slots__ = ("_starts", "bytes_read", "calls", "ns")

    def __init__(self) -> None:
        self.ns = [0] * len(STAGES)
        self.calls = [0] * len(STAGES)
        self.bytes_read = 0
        self._starts: list[tuple[int, int]] = []

    def start(self, stage: Stage) -> None:
        self._starts.append((int(stage), time.perf_counter_ns()))

    def stop(self) -> None:
        stage, t0 = self._starts.pop()
        elapsed = time.perf_counter_ns() - t0
        self.ns[stage] += elapsed
        self.calls[stage] += 1
        # A stage nested in another (a thumbnail decoded while the clip is open) is
        # charged to itself only: the enclosing stage gives the time back.
        if self._starts:
            outer = self._starts[-1][0]
            self.ns[outer] -= elapsed

    def to_stats(self) -> dict[str, Any]:
        """The entry a sample carries: fixed keys and shapes, so batches collate."""
        return {
            "stage_ns": torch.tensor(self.ns, dtype=torch.int64),
            "stage_calls": torch.tensor(self.calls, dtype=torch.int64),
            "bytes_read": int(self.bytes_read),
            "pid": os.getpid(),
            "worker": _worker_id(),
            "rank": _rank(),
        }


class _Timed:
    __slots__ = ("clock", "stage")

    def __init__(self, clock: StageClock, stage: Stage) -> None:
        self.clock = clock
        self.stage = stage

    def __enter__(self) -> None:
        self.clock.start(self.stage)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.clock.stop()


class _Null:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NULL = _Null()


def timed(stage: Stage) -> _Timed | _Null:
    """Charge the enclosed block to ``stage`` on the active clock (a no-op without one)."""
    clock = _ACTIVE.get()
    if clock is None:
        return _NULL
    return _Timed(clock, stage)


def add_bytes(count: int) -> None:
    """Count bytes read from storage for the current sample."""
    clock = _ACTIVE.get()
    if clock is not None:
        clock.bytes_read += int(count)


def active_clock() -> StageClock | None:
    return _ACTIVE.get()


class activate:
    """``with activate(clock):`` makes ``clock`` the one :func:`timed` writes to.

    One clock per thread at a time: a map-style ``__getitem__`` runs one sample
    at a time in each DataLoader worker; samples decoded on other threads get
    their own clocks.
    """

    __slots__ = ("clock", "token")

    def __init__(self, clock: StageClock) -> None:
        self.clock = clock
        self.token: contextvars.Token | None = None

    def __enter__(self) -> StageClock:
        self.token = _ACTIVE.set(self.clock)
        return self.clock

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            _ACTIVE.reset(self.token)
            self.token = None


def with_stats(produce: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``produce`` (one sample's work) under a fresh clock and attach its totals
    under ``"stats"``. Any loader becomes observable with one call per sample:
    ``TaliDataset(collect_stats=True)`` does exactly this in ``__getitem__``."""
    with activate(StageClock()) as clock:
        sample = produce()
    sample[STATS_KEY] = clock.to_stats()
    return sample


def _worker_id() -> int:
    info = torch.utils.data.get_worker_info()
    return -1 if info is None else int(info.id)


def _rank() -> int:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return int(os.environ.get("RANK", "0"))


class TimedCollate:
    """Wrap a collate function so the batch's stats include the collate time.

    Collate runs once per batch, after every sample's clock has stopped, so its
    time is charged to the batch's first sample (totals stay exact). Picklable.
    """

    def __init__(self, collate_fn: Any) -> None:
        self.collate_fn = collate_fn

    def __call__(self, samples: Any) -> Any:
        t0 = time.perf_counter_ns()
        batch = self.collate_fn(samples)
        elapsed = time.perf_counter_ns() - t0
        stats = batch.get(STATS_KEY) if isinstance(batch, dict) else None
        if isinstance(stats, dict) and isinstance(stats.get("stage_ns"), torch.Tensor):
            stats["stage_ns"][0, Stage.COLLATE] += elapsed
            stats["stage_calls"][0, Stage.COLLATE] += 1
        return batch
