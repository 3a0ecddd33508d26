"""TALI shards as a ``ray.data.Dataset``, and a ``map_batches`` transform to aligned samples.

>>> ds = tali.ray.read_tali(root, split="train", columns=["item_idx", "youtube_video_content"])
>>> ds = ds.map_batches(tali.ray.TaliBatchTransform(config), batch_size=8, batch_format="pyarrow")
>>> batch = ds.take_batch(8)   # {"youtube_content_video.frames": uint8 [B, T, 3, H, W], ...}

One read task per parquet row group (from the footers, read on the driver), each
reading only the projected columns: a 2 GB shard of 20 row groups is 20 tasks
of ~100 MB, not one. Paths are local files (a Hub-layout directory, the Hub
cache) or fsspec URLs (``s3://``, ``gs://``, ``hf://``), opened in the task.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tali.config import TaliConfig
from tali.data.sources import SourceLike, resolve_local_files
from tali.ray._backend import require_ray

__all__ = ["TaliBatchTransform", "flatten_sample", "read_tali", "row_groups"]


def _is_url(path: str) -> bool:
    return "://" in path


def _open(path: str) -> pq.ParquetFile:
    if _is_url(path):
        import fsspec  # type: ignore[import-untyped]

        return pq.ParquetFile(fsspec.open(path, "rb").open())
    return pq.ParquetFile(path)


def row_groups(shards: Sequence[str]) -> list[tuple[str, int, int, int]]:
    """``(shard, row group, rows, bytes)`` for every row group, from the footers only."""
    out = []
    for shard in shards:
        meta = _open(shard).metadata
        for group in range(meta.num_row_groups):
            rg = meta.row_group(group)
            out.append((shard, group, rg.num_rows, rg.total_byte_size))
    return out


def _read_group(shard: str, group: int, columns: list[str] | None) -> Iterable[pa.Table]:
    yield _open(shard).read_row_group(group, columns=columns)


def read_tali(
    source: SourceLike,
    *,
    split: str | None = None,
    columns: Sequence[str] | None = None,
    override_num_blocks: int | None = None,
) -> Any:
    """A ``ray.data.Dataset`` of TALI rows (Arrow blocks, one per row group), projected to ``columns``.

    ``source``: a local directory/file/list, or a list of fsspec URLs (or one URL).
    """
    ray = require_ray()
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    if isinstance(source, str) and _is_url(source):
        shards = [source]
    elif isinstance(source, list | tuple) and source and all(_is_url(str(s)) for s in source):
        shards = [str(s) for s in source]
    else:
        shards = resolve_local_files(source, split)
    wanted = list(columns) if columns is not None else None
    groups = row_groups(shards)

    class _TaliRowGroups(Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return sum(g[3] for g in groups)

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context=None):
            tasks = []
            for shard, group, rows, size in groups:
                meta = BlockMetadata(num_rows=rows, size_bytes=size, input_files=(shard,), exec_stats=None)
                tasks.append(
                    ReadTask(
                        functools.partial(_read_group, shard, group, wanted),
                        meta,
                        per_task_row_limit=per_task_row_limit,
                    )
                )
            return tasks

    # One block per row group unless asked otherwise (Ray would split small ones further).
    blocks = override_num_blocks if override_num_blocks is not None else len(groups)
    return ray.data.read_datasource(_TaliRowGroups(), override_num_blocks=blocks)


def flatten_sample(sample: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"youtube_content_video": {"frames": t}}`` -> ``{"youtube_content_video.frames": array}``."""
    out: dict[str, Any] = {}
    for key, value in sample.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_sample(value, f"{name}."))
        elif hasattr(value, "numpy"):
            out[name] = value.numpy()
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class TaliBatchTransform:
    """``map_batches`` callable: Arrow rows -> decoded, aligned samples as numpy columns.

    Sample ``i`` of a batch is row ``i``; its choices are keyed by
    :func:`tali.window.seed_key` (the row's ``item_idx``), so they match every
    other entry point on the same row and ``epoch``. Equal-shaped
    tensors are stacked (``[B, ...]``); text and other values become object arrays.
    A row that fails raises (use :mod:`tali.data.policy` semantics upstream by
    validating or filtering first).
    """

    config: TaliConfig
    epoch: int = 0

    def __call__(self, batch: pa.Table) -> dict[str, np.ndarray]:
        from tali.data.rows import row_to_python
        from tali.transform import TaliTransform

        transform = TaliTransform(self.config)
        samples = []
        for offset in range(batch.num_rows):
            row = row_to_python(batch, offset)
            key = row.get("item_idx")
            samples.append(
                flatten_sample(transform(row, key=int(key) if key is not None else offset, epoch=self.epoch))
            )
        out: dict[str, np.ndarray] = {}
        for name in samples[0] if samples else []:
            values = [s.get(name) for s in samples]
            arrays = [v for v in values if isinstance(v, np.ndarray)]
            if len(arrays) == len(values) and len({a.shape for a in arrays}) == 1:
                out[name] = np.stack(arrays)
            else:
                column = np.empty(len(values), dtype=object)
                column[:] = values
                out[name] = column
        return out
