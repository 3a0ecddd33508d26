"""Use ``tali``'s transform on a Hugging Face ``datasets`` object you already hold.

>>> ds = datasets.load_dataset("Antreas/TALI", split="val")          # or streaming=True
>>> ds = tali.hf.prepare(ds).with_transform(tali.hf.as_transform(config))
>>> ds[0]["youtube_content_video"]["frames"].shape                    # [N, 3, S, S]
>>> it = tali.hf.prepare(ids).map(tali.hf.as_transform(config), batched=True,
...                               remove_columns=list(ids.column_names))

``datasets`` already does random access over its Arrow cache and streaming
with ``shuffle``/``shard``; we plug into it (``with_transform`` decodes lazily
in ``__getitem__``, ``map`` on an ``IterableDataset`` decodes on the fly) rather
than duplicating it. What it cannot give (no Arrow copy of 2 TB, exact resume
with the shuffle buffer, elastic resume) is :class:`tali.data.streaming.TaliStream`'s job.

Per-sample randomness is keyed by :func:`tali.window.seed_key` (the row's
``item_idx``, unique per TALI row) and the epoch set on the transform, as in
every entry point: a row gets the same window here as from ``TaliDataset``,
``TaliStream``, ``tali.ray`` and ``tali.view``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tali.config import TaliConfig
from tali.errors import TaliSchemaError
from tali.schema import Column
from tali.transform import TaliTransform

__all__ = ["HfTransform", "as_transform", "prepare"]


class HfTransform:
    """Batch (``dict`` of lists) or single-row (``dict``) in, samples out, per ``datasets`` convention."""

    def __init__(self, config: TaliConfig | None = None, *, epoch: int = 0) -> None:
        self.transform = TaliTransform(config)
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _one(self, row: Mapping[str, Any]) -> dict[str, Any]:
        key = row.get(str(Column.ITEM_IDX))
        if not isinstance(key, int):
            raise TaliSchemaError(
                "rows need an integer item_idx to key their random choices", field=str(Column.ITEM_IDX)
            )
        return self.transform(row, key=key, epoch=self.epoch)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        ids = batch.get(str(Column.ITEM_IDX))
        if not isinstance(ids, list):
            return self._one(batch)
        rows = [{name: values[i] for name, values in batch.items()} for i in range(len(ids))]
        samples = [self._one(row) for row in rows]
        names = samples[0].keys() if samples else ()
        return {name: [s[name] for s in samples] for name in names}


def as_transform(config: TaliConfig | None = None, *, epoch: int = 0) -> HfTransform:
    """A function for ``Dataset.with_transform`` / ``set_transform`` / ``map(batched=True)``."""
    return HfTransform(config, epoch=epoch)


def prepare(dataset: Any) -> Any:
    """Keep image columns as bytes (``Image(decode=False)``): ``tali`` decodes them itself,
    with its pixel-limit guard and resizing, instead of receiving PIL images."""
    from tali._optional import require

    datasets = require("datasets", extra="hf", feature="tali.hf (Hugging Face datasets interop)")

    features = getattr(dataset, "features", None) or {}
    for name, feature in features.items():
        if isinstance(feature, datasets.Image) and feature.decode:
            dataset = dataset.cast_column(name, datasets.Image(decode=False))
    return dataset
