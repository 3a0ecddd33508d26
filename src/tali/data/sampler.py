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

__all__ = ["TaliDistributedSampler"]


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
            order = torch.randperm(n, generator=g).tolist()
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
