"""Map-style access: ``dataset[i]`` decodes global row ``i`` of a split.

Nothing is copied or converted: rows are read from the original parquet
shards, one row group at a time, projecting only the columns the requested
sub-modalities need (a text-only config never reads video bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch.utils.data

from tali.clock import Stage, TimedCollate, add_bytes, timed, with_stats
from tali.collation import collate
from tali.config import TaliConfig
from tali.data.durations import load_durations
from tali.data.footers import FileIdentity
from tali.data.policy import (
    OnError,
    SkipRecord,
    apply_policy,
    check_max_consecutive_bad,
    check_on_error,
    mark,
    placeholder_sample,
)
from tali.data.row_source import RowSource
from tali.data.rows import RowLimits, row_item_idx, row_to_python
from tali.data.shards import Opener, ShardIndex
from tali.data.sources import SourceLike, resolve_local_files
from tali.errors import TaliConfigError, TaliDataError
from tali.pipeline.pipeline import Pipeline, resolve_pipeline

__all__ = ["TaliDataset", "make_loader"]


class TaliDataset(torch.utils.data.Dataset):
    """TALI rows of one split as aligned samples (see :mod:`tali.transform` for the layout).

    Per-sample randomness depends only on ``(config.seed, epoch, index)``: call
    :meth:`set_epoch` before each epoch (before the DataLoader iterator is
    created, as with ``DistributedSampler``) to draw new windows and frames.

    ``on_error`` (see :mod:`tali.data.policy`): ``"raise"``; ``"skip"`` serves
    the next good row in place of a bad one; ``"substitute"`` serves a zero
    placeholder with ``valid=False``. With either, samples gain ``valid`` and
    ``errors`` for :class:`ErrorReport`; a row group that cannot be read counts
    as bad rows, like a row that cannot be decoded. Each bad row is recorded
    once, by the request for its own index. ``max_consecutive_bad``: the run
    of bad rows after which a request gives up with ``TaliDataError``
    (``None``, the default: only when every row is bad), the same rule as
    :class:`~tali.data.streaming.TaliStream`. ``max_open_shards`` bounds open
    file handles (least recently used closed first).

    ``item_ids``: keep only rows whose ``item_idx`` is in this collection (an
    index from ``tali filter``); only the ``item_idx`` column is read to find
    them. Every id must exist in the split: a missing one raises rather than
    silently shrinking the dataset (the same rule as ``TaliStream``).

    Reading (:class:`~tali.data.row_source.RowSource`): a sample reads its own
    row's pages where the shard's layout allows (one clip per page, as ``datasets``
    >= 4 writes), else its row group, keeping the last ``cache_row_groups``; for
    shuffled access to such shards use
    :class:`~tali.data.sampler.RowGroupShuffleSampler`. ``source.layout()`` says which.

    ``collect_stats=True`` adds ``stats`` to every sample: time and calls per
    stage (``stage_ns``/``stage_calls`` int64 ``[S]``, columns in
    :class:`tali.observe.Stage` order), ``bytes_read``, ``pid``, ``worker`` and
    ``rank``, for :class:`tali.observe.Monitor`. Time spent on rows skipped
    for a sample is charged to that sample.
    """

    def __init__(
        self,
        source: SourceLike | None = None,
        *,
        split: str = "train",
        config: TaliConfig | None = None,
        files: Sequence[str] | None = None,
        opener: Opener | None = None,
        on_error: OnError = "raise",
        max_consecutive_bad: int | None = None,
        max_open_shards: int = 16,
        processors: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        item_ids: Iterable[int] | None = None,
        collect_stats: bool = False,
        pipeline: Pipeline | None = None,
        index: ShardIndex | None = None,
        identities: Sequence[FileIdentity] | None = None,
        cache_row_groups: int = 2,
    ) -> None:
        self.config = pipeline.config if pipeline is not None and config is None else (config or TaliConfig())
        self.on_error = check_on_error(on_error)
        self.max_consecutive_bad = check_max_consecutive_bad(max_consecutive_bad)
        if files is None:
            if source is None:
                raise TaliConfigError("give a source (directory or files) or files=")
            files = resolve_local_files(source, split)
        self.files = [str(f) for f in files]
        #: The one row source: footers, column check, item_ids, page or row-group reads.
        self.source = RowSource(
            self.files,
            modalities=self.config.modalities,
            opener=opener,
            split=split,
            index=index,
            identities=identities,
            max_open_shards=max_open_shards,
            cache_row_groups=cache_row_groups,
        )
        self.split = self.source.split or split
        self.index = self.source.index
        self.columns = self.source.columns
        #: Every sample is ``pipeline(row)``: decode (+ processors) unless given one.
        self.pipeline = resolve_pipeline(config, processors, pipeline, load_durations(self.files))
        self.transform = self.pipeline.transform
        #: Runs in the worker after decoding (e.g. model processors); its
        #: TaliDataErrors follow ``on_error`` like decode errors do.
        self.processors = processors
        self.collect_stats = bool(collect_stats)
        self.epoch = 0
        # Rows of this epoch already found bad in this process: stepped over without decoding
        # again (a broken shard costs one decode per row, not one per row per request).
        self._bad: dict[int, SkipRecord] = {}
        #: Global row numbers this dataset serves (``None``: every row).
        self.rows: np.ndarray | None = None
        if item_ids is not None:
            self.rows = self.source.item_rows(item_ids)

    def __len__(self) -> int:
        return len(self.index) if self.rows is None else int(self.rows.size)

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) != self.epoch:
            self._bad = {}
        self.epoch = int(epoch)

    def read_row(self, index: int) -> dict[str, Any]:
        """The raw row (projected columns only), as Python values."""
        return row_to_python(self.source.read_row(self._global_row(index)), 0)

    def _global_row(self, index: int) -> int:
        return index if self.rows is None else int(self.rows[index])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not self.collect_stats:
            return self._getitem(index)
        return with_stats(lambda: self._getitem(index))

    def _getitem(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if self.on_error == "raise":
            sample, _ = self._attempt(index)
            assert sample is not None
            return sample
        n = len(self)
        limit = n if self.max_consecutive_bad is None else min(n, self.max_consecutive_bad + 1)
        own: SkipRecord | None = None
        for step in range(limit):
            j = (index + step) % n
            known = self._bad.get(self._global_row(j))
            record: SkipRecord | None
            if known is not None:
                sample, record = None, known
            else:
                sample, record = self._attempt(j)
            if record is not None:
                if len(self._bad) < 1 << 16:
                    self._bad[self._global_row(j)] = record
                if step == 0:
                    own = record
                    if self.on_error == "substitute":
                        sample = self._placeholder(j, record)
            if sample is not None:
                return mark(sample, valid=own is None or step > 0, records=[own] if own else [])
        first = own or next(iter(self._bad.values()))
        raise TaliDataError(
            f"rows {index}..{index + limit - 1} (mod {n}) are all bad "
            f"(max_consecutive_bad={self.max_consecutive_bad}); first: {first.message}",
            item_idx=first.item_idx,
            field=first.field,
        )

    def _placeholder(self, index: int, record: SkipRecord) -> dict[str, Any]:
        row = self._global_row(index)
        sample = placeholder_sample(self.config, key=row, epoch=self.epoch, item_idx=record.item_idx)
        # The placeholder goes through the processors too, so it batches with good samples.
        return self.pipeline.finish_placeholder(sample)

    def _produce(self, row: dict[str, Any], index: int) -> dict[str, Any]:
        return self.pipeline(row, key=index, epoch=self.epoch)

    def _attempt(self, index: int) -> tuple[dict[str, Any] | None, SkipRecord | None]:
        """``(sample, None)`` for a good row, ``(None, record)`` for a bad one (under raise: raises)."""
        # The row's place in the split is passed on; randomness is keyed by the row's
        # item_idx (tali.window.seed_key), so a filter, a re-sharded copy or another entry
        # point (hf, ray, view, live) makes the same choices for the same row.
        row_number = self._global_row(index)
        ref, offset = self.index.locate(row_number)
        located: dict[str, Any] = {}

        def attempt() -> dict[str, Any]:
            # Reading runs inside the policy: an unreadable row group is bad rows, not a crash,
            # and converting to Python too: invalid UTF-8 is a bad row.
            limits = RowLimits.from_config(self.config)
            with timed(Stage.READ):
                table = self.source.read_row(row_number, limits=limits)
                add_bytes(table.nbytes)
            located["item_idx"] = row_item_idx(table, 0)
            return self._produce(row_to_python(table, 0, limits=limits), row_number)

        mode: OnError = "raise" if self.on_error == "raise" else "skip"
        return apply_policy(
            mode,
            attempt,
            config=self.config,
            key=row_number,
            epoch=self.epoch,
            item_idx=lambda: located.get("item_idx"),
            shard=self.index.shards[ref.shard].path,
            row=ref.shard_row + offset,
        )

    def __repr__(self) -> str:
        return (
            f"TaliDataset(split={self.split!r}, rows={len(self)}, shards={len(self.files)}, "
            f"columns={self.columns})"
        )


def default_collate_for(dataset: Any) -> Callable[[list[Any]], Any]:
    """The collate of a dataset's pipeline (through a ``Subset``), else :func:`tali.collate`."""
    pipeline = getattr(getattr(dataset, "dataset", dataset), "pipeline", None)
    return pipeline.collate if isinstance(pipeline, Pipeline) else collate


def make_loader(
    dataset: torch.utils.data.Dataset,
    *,
    batch_size: int = 8,
    num_workers: int = 2,
    shuffle: bool = False,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    **kwargs: Any,
) -> torch.utils.data.DataLoader:
    """A DataLoader with sensible defaults for decoding work. ``collate_fn`` defaults to the
    dataset's pipeline's (its processors' per-batch padding), so processors are given once."""
    # A Subset of a TaliDataset collects stats too: look through it.
    collate_fn = collate_fn or default_collate_for(dataset)
    stats = getattr(getattr(dataset, "dataset", dataset), "collect_stats", False)
    if stats and not isinstance(collate_fn, TimedCollate):
        collate_fn = TimedCollate(collate_fn)
    if num_workers > 0:
        kwargs.setdefault("prefetch_factor", 2)
        kwargs.setdefault("persistent_workers", False)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        shuffle=shuffle,
        collate_fn=collate_fn,
        **kwargs,
    )
