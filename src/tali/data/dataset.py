"""Map-style access: ``dataset[i]`` decodes global row ``i`` of a split.

Nothing is copied or converted: rows are read from the original parquet
shards, one row group at a time, projecting only the columns the requested
sub-modalities need (a text-only config never reads video bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch.utils.data

from tali.config import TaliConfig
from tali.data.collate import collate
from tali.data.shards import Opener, RowGroupReader, ShardIndex
from tali.data.sources import SourceLike, resolve_local_files
from tali.errors import TaliDataError
from tali.schema import columns_for
from tali.transform import TaliTransform

__all__ = ["TaliDataset", "make_loader"]


class TaliDataset(torch.utils.data.Dataset):
    """TALI rows of one split as aligned samples (see :mod:`tali.transform` for the layout).

    Per-sample randomness depends only on ``(config.seed, epoch, index)``: call
    :meth:`set_epoch` before each epoch (before the DataLoader iterator is
    created, as with ``DistributedSampler``) to draw new windows and frames.
    """

    def __init__(
        self,
        source: SourceLike | None = None,
        *,
        split: str = "train",
        config: TaliConfig | None = None,
        files: Sequence[str] | None = None,
        opener: Opener | None = None,
    ) -> None:
        self.config = config or TaliConfig()
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
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def read_row(self, index: int) -> dict[str, Any]:
        """The raw row (projected columns only), as Python values."""
        return self.reader.read_row(index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        ref, offset = self.index.locate(index)
        row = self.reader.read_row_group(ref).slice(offset, 1).to_pylist()[0]
        try:
            return self.transform(row, key=index, epoch=self.epoch)
        except TaliDataError as exc:
            raise exc.with_location(
                shard=Path(self.index.shards[ref.shard].path).name, row=ref.shard_row + offset
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
    **kwargs: Any,
) -> torch.utils.data.DataLoader:
    """A DataLoader with ``tali``'s collate and sensible defaults for decoding work."""
    if num_workers > 0:
        kwargs.setdefault("prefetch_factor", 2)
        kwargs.setdefault("persistent_workers", False)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, shuffle=shuffle, collate_fn=collate, **kwargs
    )
