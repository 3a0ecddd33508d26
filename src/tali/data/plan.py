"""Which rows each (rank, worker) stream reads in an epoch, and in what order. Pure.

Deciding is separated from doing: an :class:`EpochPlan` reads no data, only
row-group sizes, so every process (each rank, each DataLoader worker, and a
process resuming a checkpoint) computes the same plan from
``(seed, epoch, topology, excluded rows)`` and agrees on who reads what.

The plan of one epoch::

    row groups ──shuffle(seed, epoch)──► rows in row-group order, minus excluded
        ──contiguous split──► rank r ──contiguous split──► worker w  (a *stream*)
        ──bounded shuffle buffer(seed, epoch, stream)──► the stream's output order

Contiguous splits keep each stream reading whole row groups (a row group is
shared by two streams only at a boundary), and give every rank the same number
of rows to within one, whatever the shard and row-group sizes.

Resume is exact because a stream's output order is a pure function of the plan:
a checkpoint only needs how many outputs each stream delivered. Elastic resume
(a different number of ranks or workers) turns those prefixes into a set of
consumed rows and plans the rest of the epoch over the new topology.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from tali.errors import TaliConfigError

__all__ = ["EpochPlan", "EqualPerRank", "Topology", "buffer_order", "check_equal_per_rank"]

#: ``"off"``: ranks get N//W or N//W + 1 rows (each row exactly once);
#: ``"drop"``: every rank gets N//W (the N % W left over are not read this epoch);
#: ``"pad"``: every rank gets ceil(N/W), short ranks repeat their first rows.
EqualPerRank = Literal["off", "drop", "pad"]


def check_equal_per_rank(value: str) -> EqualPerRank:
    if value not in get_args(EqualPerRank):
        raise TaliConfigError(
            f"equal_per_rank={value!r} is not allowed; choose one of {get_args(EqualPerRank)}"
        )
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class Topology:
    """How many ranks and DataLoader workers per rank share an epoch."""

    world_size: int
    num_workers: int  # >= 1: the main process counts as one worker

    def __post_init__(self) -> None:
        if self.world_size < 1 or self.num_workers < 1:
            raise TaliConfigError(f"world_size and num_workers must be >= 1, got {self}")

    @property
    def num_streams(self) -> int:
        return self.world_size * self.num_workers

    def stream_id(self, rank: int, worker: int) -> int:
        return rank * self.num_workers + worker


def buffer_order(n: int, buffer_size: int, rng: np.random.Generator) -> np.ndarray:
    """Output order of a bounded shuffle buffer fed inputs ``0..n-1``.

    The classic streaming shuffle (webdataset, HF datasets): fill the buffer,
    then each new input evicts a uniformly chosen slot; drain shuffled. Output
    ``i`` is always among inputs ``0..i + buffer_size - 1``, so a reader that
    has ingested that far can serve it. ~0.3 s per million rows (measured).
    """
    if buffer_size <= 1 or n <= 1:
        return np.arange(n, dtype=np.int64)
    size = min(buffer_size, n)
    buf = list(range(size))
    out = np.empty(n, dtype=np.int64)
    slots = rng.integers(0, size, size=max(n - size, 0))
    for i, j in enumerate(slots.tolist()):
        out[i] = buf[j]
        buf[j] = size + i
    out[n - size :] = np.asarray(buf, dtype=np.int64)[rng.permutation(size)]
    return out


class EpochPlan:
    """Every stream's rows for one epoch.

    ``unit_rows``: rows per row group, in index order. ``allowed``: a bool mask
    over global rows (``None``: all), e.g. from an ``item_ids`` filter.
    ``excluded``: rows already consumed earlier in this epoch (elastic resume).
    """

    def __init__(
        self,
        unit_rows: np.ndarray,
        *,
        seed: int,
        epoch: int,
        topology: Topology,
        shuffle: bool,
        buffer_size: int,
        equal_per_rank: EqualPerRank = "off",
        allowed: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
    ) -> None:
        self.topology = topology
        self.seed, self.epoch = int(seed), int(epoch)
        self.buffer_size = int(buffer_size) if shuffle else 0
        self.unit_rows = np.asarray(unit_rows, dtype=np.int64)
        self.unit_starts = np.concatenate([[0], np.cumsum(self.unit_rows)[:-1]]).astype(np.int64)
        self.num_rows = int(self.unit_rows.sum())
        self.excluded_tag = 0 if excluded is None else zlib.crc32(np.packbits(excluded).tobytes())
        order = np.arange(len(self.unit_rows))
        if shuffle:
            order = self._rng("units").permutation(len(self.unit_rows))
        rows = np.concatenate(
            [np.arange(self.unit_starts[u], self.unit_starts[u] + self.unit_rows[u]) for u in order]
            or [np.zeros(0, dtype=np.int64)]
        ).astype(np.int64)
        keep = np.ones(self.num_rows, dtype=bool)
        if allowed is not None:
            keep &= allowed
        if excluded is not None:
            keep &= ~excluded
        rows = rows[keep[rows]]
        self.total = len(rows)
        w = topology.world_size
        if equal_per_rank == "drop":
            per = self.total // w
            self._rank_rows = [rows[r * per : (r + 1) * per] for r in range(w)]
        elif equal_per_rank == "pad":
            per = -(-self.total // w)
            padded = np.resize(rows, w * per) if self.total else rows
            self._rank_rows = [padded[r * per : (r + 1) * per] for r in range(w)]
        else:
            bounds = [(r * self.total) // w for r in range(w + 1)]
            self._rank_rows = [rows[bounds[r] : bounds[r + 1]] for r in range(w)]
        self._outputs: dict[int, np.ndarray] = {}

    def _rng(self, purpose: str, *extra: int) -> np.random.Generator:
        t = self.topology
        entropy = [
            self.seed & (2**63 - 1),
            self.epoch,
            zlib.crc32(purpose.encode()),
            self.excluded_tag,
            *extra,
        ]
        if purpose != "units":  # unit order is the same for every topology
            entropy += [t.world_size, t.num_workers]
        return np.random.default_rng(np.random.SeedSequence(entropy))

    def rank_size(self, rank: int) -> int:
        return len(self._rank_rows[rank])

    def stream_inputs(self, rank: int, worker: int) -> np.ndarray:
        """Global rows of one stream, in reading (row-group) order."""
        mine = self._rank_rows[rank]
        k = self.topology.num_workers
        lo, hi = (worker * len(mine)) // k, ((worker + 1) * len(mine)) // k
        return mine[lo:hi]

    def stream_order(self, rank: int, worker: int) -> np.ndarray:
        """Output order of one stream as positions into :meth:`stream_inputs`."""
        sid = self.topology.stream_id(rank, worker)
        if sid not in self._outputs:
            n = len(self.stream_inputs(rank, worker))
            self._outputs[sid] = buffer_order(n, self.buffer_size, self._rng("buffer", sid))
        return self._outputs[sid]

    def stream_outputs(self, rank: int, worker: int) -> np.ndarray:
        """Global rows one stream yields, in yield order."""
        return self.stream_inputs(rank, worker)[self.stream_order(rank, worker)]

    def unit_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.unit_starts, rows, side="right") - 1

    def consumed(self, counts: dict[int, int]) -> np.ndarray:
        """Bool mask of rows delivered when stream ``s`` has yielded ``counts[s]`` outputs."""
        mask = np.zeros(self.num_rows, dtype=bool)
        t = self.topology
        for rank in range(t.world_size):
            for worker in range(t.num_workers):
                c = counts.get(t.stream_id(rank, worker), 0)
                if c:
                    mask[self.stream_outputs(rank, worker)[:c]] = True
        return mask
