"""Checkpointable loading: a DataLoader that counts what it delivered, and merging
the per-rank states of one job.

``StreamingLoader`` observes each batch the training loop *receives* (batches
prefetched by workers but not handed out are not counted), so
``state_dict()`` is exact at any batch boundary. See :mod:`tali.data.streaming`
for what a state holds and how a stream resumes from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch.utils.data

from tali.collation import collate
from tali.data.checkpoint import check_int, check_mapping
from tali.data.plan import Topology
from tali.errors import TaliConfigError

if TYPE_CHECKING:
    from tali.data.streaming import TaliStream

__all__ = ["StreamingLoader", "merge_states"]


def merge_states(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One state from the per-rank states of one job (what ``state_dict(gather=True)``
    does under ``torch.distributed``; use this when ranks saved separately)."""
    if not states:
        raise TaliConfigError("merge_states needs at least one state")
    fields = ("version", "epoch", "plan", "world_size", "num_workers", "base", "counts")
    for state in states:
        check_mapping(state, fields, what="stream")
        if not isinstance(state["counts"], dict):
            raise TaliConfigError("stream state field 'counts' must be a dict")
    first = states[0]
    for other in states[1:]:
        for name in ("version", "epoch", "plan", "world_size", "num_workers", "base"):
            if other[name] != first[name]:
                raise TaliConfigError(f"states disagree on {name}: {first[name]!r} vs {other[name]!r}")
    counts: dict[int, int] = {}
    for state in states:
        for s, c in state["counts"].items():
            sid, count = check_int(s, "counts (stream id)"), check_int(c, f"counts[{s}]")
            counts[sid] = max(counts.get(sid, 0), count)
    return {**first, "counts": counts}


class StreamingLoader:
    """A DataLoader over a :class:`TaliStream` that knows what it delivered.

    ``state_dict()`` is exact at any batch boundary: batches prefetched by
    workers but not yet handed out are not counted, so they are read again
    after a resume. Workers are not persistent (each ``iter`` re-plans).
    """

    def __init__(
        self,
        dataset: TaliStream,
        *,
        batch_size: int = 8,
        num_workers: int = 2,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("persistent_workers"):
            raise TaliConfigError("persistent_workers=True would keep a stale plan across epochs and resumes")
        self.dataset = dataset
        self.num_workers = num_workers
        if num_workers > 0:
            kwargs.setdefault("prefetch_factor", 2)
        if collate_fn is None:  # the stream's pipeline batches (processors are given once)
            pipeline = getattr(dataset, "pipeline", None)
            collate_fn = (
                pipeline.collate if pipeline is not None and hasattr(pipeline, "collate") else collate
            )
        self._loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_fn, **kwargs
        )

    def __iter__(self) -> Iterator[Any]:
        self.dataset._advance_if_done()
        self.dataset._loader_workers = max(self.num_workers, 1)
        if self.num_workers > 0:
            self.dataset._begin_segment(Topology(self.dataset.world_size, self.num_workers))
        for batch in self._loader:
            self.dataset.observe(batch)
            yield batch
        self.dataset._finish_pass()

    def __len__(self) -> int:
        """Batches this rank yields in a whole epoch: each worker ends on its own partial
        batch, so this can exceed ``ceil(len(dataset) / batch_size)``."""
        ds, size = self.dataset, self._loader.batch_size or 1
        plan = ds.plan(Topology(ds.world_size, max(self.num_workers, 1)))
        counts = [len(plan.stream_inputs(ds.rank, w)) for w in range(max(self.num_workers, 1))]
        if self._loader.drop_last:
            return sum(n // size for n in counts)
        return sum(-(-n // size) for n in counts)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def state_dict(self, *, gather: bool = True) -> dict[str, Any]:
        return self.dataset.state_dict(gather=gather)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dataset.load_state_dict(state)
