"""Map-style sharding across ``torch.distributed`` ranks with the streaming guarantees.

``torch.utils.data.DistributedSampler`` pads every rank to ceil(N/W) by
repeating indices, so with ``drop_last=False`` some samples are seen twice per
epoch. :class:`TaliDistributedSampler` gives each rank a contiguous slice of
one shuffled permutation (each index exactly once, rank sizes within one), or
equal sizes by dropping or padding when asked: the same
:data:`~tali.data.plan.EqualPerRank` modes as :class:`~tali.data.streaming.TaliStream`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
import torch.utils.data

from tali.data.checkpoint import check_int, check_mapping
from tali.data.plan import EqualPerRank, check_equal_per_rank
from tali.data.streaming import resolve_rank
from tali.errors import TaliConfigError

__all__ = ["RowGroupShuffleSampler", "TaliDistributedSampler"]


class TaliDistributedSampler(torch.utils.data.Sampler[int]):
    """Indices of one rank, for ``DataLoader(dataset, sampler=...)``.

    Call :meth:`set_epoch` before each epoch (and keep it in step with the
    dataset's own ``set_epoch``) to reshuffle. ``state_dict()`` /
    ``load_state_dict()`` resume mid-epoch after ``consumed`` indices of this rank.
    """

    def __init__(
        self,
        dataset: Sized,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        equal_per_rank: EqualPerRank = "off",
    ) -> None:
        self.num_rows = len(dataset)
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.equal_per_rank = check_equal_per_rank(equal_per_rank)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) != self.epoch:
            self.epoch, self.start = int(epoch), 0

    def indices(self) -> list[int]:
        """This rank's indices for the current epoch, from the start."""
        n, w, r = self.num_rows, self.world_size, self.rank
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = self._shuffled(g)
        else:
            order = list(range(n))
        if self.equal_per_rank == "drop":
            per = n // w
            return order[r * per : (r + 1) * per]
        if self.equal_per_rank == "pad":
            per = -(-n // w)
            padded = (order * (-(-w * per // max(n, 1))))[: w * per] if n else []
            return padded[r * per : (r + 1) * per]
        return order[(r * n) // w : ((r + 1) * n) // w]

    def _shuffled(self, g: torch.Generator) -> list[int]:
        return torch.randperm(self.num_rows, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def __len__(self) -> int:
        return len(self.indices()) - self.start

    def state_dict(self, consumed: int) -> dict[str, int]:
        """The state after this rank's loop consumed ``consumed`` indices of the epoch."""
        return {
            "epoch": self.epoch,
            "start": self.start + int(consumed),
            "seed": self.seed,
            "world_size": self.world_size,
            "num_rows": self.num_rows,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        state = dict(
            check_mapping(state, ("epoch", "start", "seed", "world_size", "num_rows"), what="sampler")
        )
        for name in ("world_size", "num_rows", "seed"):
            check_int(state[name], name, low=-(1 << 62) if name == "seed" else 0, what="sampler")
        if (state["world_size"], state["num_rows"], state["seed"]) != (
            self.world_size,
            self.num_rows,
            self.seed,
        ):
            raise TaliConfigError(
                f"sampler state is for world_size={state['world_size']}, num_rows={state['num_rows']}, "
                f"seed={state['seed']}; this sampler has {self.world_size}, {self.num_rows}, {self.seed} "
                f"(use TaliStream for elastic resume)"
            )
        check_int(state["epoch"], "epoch", what="sampler")
        epoch = self.epoch
        self.epoch = int(state["epoch"])
        try:
            check_int(state["start"], "start", high=len(self.indices()), what="sampler")
        finally:
            self.epoch = epoch
        self.epoch, self.start = int(state["epoch"]), int(state["start"])


class RowGroupShuffleSampler(TaliDistributedSampler):
    """A shuffle that reads each row group about once, for shards whose rows cost their row group.

    Where a shard's layout does not allow page reads (``dataset.source.layout()`` says
    ``row_group``: pyarrow's defaults write a 100-clip chunk as one dictionary page), a
    uniform shuffle reads a whole row group (~170 MB on TALI) for every sample. This
    order shuffles row groups, then rows within windows of ``window`` consecutive
    (shuffled) row groups, all from ``(seed, epoch)``; with ``TaliDataset(...,
    cache_row_groups=window)`` a process reads each row group of a window once. The
    trade-off: a batch mixes rows of ``window`` row groups only, not of the whole split;
    with DataLoader workers each worker keeps its own cache, so a row group is read by up
    to ``num_workers`` processes (still ``num_workers`` x the split per epoch, not ~100x).
    Ranks get contiguous slices of the order, as in :class:`TaliDistributedSampler`.
    """

    def __init__(self, dataset: Sized, *, window: int = 2, **kwargs: object) -> None:
        if not isinstance(window, int) or window < 1:
            raise TaliConfigError(f"window must be an int >= 1, got {window!r}")
        super().__init__(dataset, **kwargs)  # type: ignore[arg-type]
        self.window = window
        source = getattr(dataset, "source", None)
        if source is None:
            raise TaliConfigError("RowGroupShuffleSampler needs a TaliDataset (its row source's row groups)")
        starts = torch.tensor([rg.first_row for rg in source.index.row_groups], dtype=torch.int64)
        rows = getattr(dataset, "rows", None)
        positions = torch.arange(len(source.index)) if rows is None else torch.as_tensor(rows)
        #: row group of each dataset index
        self.groups = torch.searchsorted(starts, positions, right=True) - 1

    def _shuffled(self, g: torch.Generator) -> list[int]:
        units = torch.unique(self.groups)
        units = units[torch.randperm(len(units), generator=g)]
        order: list[int] = []
        for k in range(0, len(units), self.window):
            members = torch.nonzero(torch.isin(self.groups, units[k : k + self.window])).flatten()
            order.extend(members[torch.randperm(len(members), generator=g)].tolist())
        return order
