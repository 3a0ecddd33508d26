"""Map-style access: ``dataset[i]`` decodes global row ``i`` of a split.

Nothing is copied or converted: rows are read from the original parquet
shards, one row group at a time, projecting only the columns the requested
sub-modalities need (a text-only config never reads video bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch.utils.data

from tali.config import TaliConfig
from tali.data.collate import collate
from tali.data.policy import OnError, apply_policy, check_on_error, mark
from tali.data.shards import Opener, RowGroupReader, ShardIndex
from tali.data.sources import SourceLike, resolve_local_files
from tali.errors import TaliDataError
from tali.observe.clock import Stage, TimedCollate, add_bytes, timed, with_stats
from tali.schema import columns_for
from tali.transform import TaliTransform

__all__ = ["TaliDataset", "make_loader"]


class TaliDataset(torch.utils.data.Dataset):
    """TALI rows of one split as aligned samples (see :mod:`tali.transform` for the layout).

    Per-sample randomness depends only on ``(config.seed, epoch, index)``: call
    :meth:`set_epoch` before each epoch (before the DataLoader iterator is
    created, as with ``DistributedSampler``) to draw new windows and frames.

    ``on_error`` (see :mod:`tali.data.policy`): ``"raise"``; ``"skip"`` serves
    the next good row in place of a bad one (at most ``max_skips_per_sample``
    in a row); ``"substitute"`` serves a zero placeholder with ``valid=False``.
    With either, samples gain ``valid`` and ``errors`` for :class:`ErrorReport`.

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
        max_skips_per_sample: int = 64,
        processors: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        collect_stats: bool = False,
    ) -> None:
        self.config = config or TaliConfig()
        self.on_error = check_on_error(on_error)
        self.max_skips_per_sample = max_skips_per_sample
        if files is None:
            if source is None:
                raise ValueError("give a source (directory or files) or files=")
            files = resolve_local_files(source, split)
        self.split = split
        self.files = list(files)
        self.index = ShardIndex.from_files(self.files, opener)
        self.columns = columns_for(self.config.modalities, available=self.index.column_names)
        self.reader = RowGroupReader(self.index, self.columns, opener=opener)
        self.transform = TaliTransform(self.config)
        #: Runs in the worker after decoding (e.g. model processors); its
        #: TaliDataErrors follow ``on_error`` like decode errors do.
        self.processors = processors
        self.collect_stats = bool(collect_stats)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def read_row(self, index: int) -> dict[str, Any]:
        """The raw row (projected columns only), as Python values."""
        return self.reader.read_row(index)

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
        records = []
        for step in range(self.max_skips_per_sample + 1):
            sample, record = self._attempt((index + step) % len(self))
            if record is not None:
                records.append(record)
            if sample is not None:
                return mark(sample, valid=record is None, records=records)
        raise TaliDataError(
            f"rows {index}..{index + self.max_skips_per_sample} (mod {len(self)}) are all bad; "
            f"first: {records[0].message}",
            item_idx=records[0].item_idx,
            field=records[0].field,
        )

    def _produce(self, row: dict[str, Any], index: int) -> dict[str, Any]:
        sample = self.transform(row, key=index, epoch=self.epoch)
        if self.processors is None:
            return sample
        with timed(Stage.PROCESSORS):
            return self.processors(sample)

    def _attempt(self, index: int):
        ref, offset = self.index.locate(index)
        with timed(Stage.READ):
            table = self.reader.read_row_group(ref).slice(offset, 1)
            add_bytes(table.nbytes)
            row = table.to_pylist()[0]
        item_idx = row.get("item_idx")
        return apply_policy(
            self.on_error,
            lambda: self._produce(row, index),
            config=self.config,
            key=index,
            epoch=self.epoch,
            item_idx=item_idx if isinstance(item_idx, int) else None,
            shard=self.index.shards[ref.shard].path,
            row=ref.shard_row + offset,
        )

    def __repr__(self) -> str:
        return (
            f"TaliDataset(split={self.split!r}, rows={len(self)}, shards={len(self.files)}, "
            f"columns={self.columns})"
        )


def make_loader(
    dataset: torch.utils.data.Dataset,
    *,
    batch_size: int = 8,
    num_workers: int = 2,
    shuffle: bool = False,
    collate_fn: Callable[[list[Any]], Any] = collate,
    **kwargs: Any,
) -> torch.utils.data.DataLoader:
    """A DataLoader with ``tali``'s collate and sensible defaults for decoding work."""
    # A Subset of a TaliDataset collects stats too: look through it.
    stats = getattr(getattr(dataset, "dataset", dataset), "collect_stats", False)
    if stats and not isinstance(collate_fn, TimedCollate):
        collate_fn = TimedCollate(collate_fn)
    if num_workers > 0:
        kwargs.setdefault("prefetch_factor", 2)
        kwargs.setdefault("persistent_workers", False)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, shuffle=shuffle, collate_fn=collate_fn, **kwargs
    )
