"""A SampleCache entry is served only for the row, config and source it was computed for,
and its size is checked before it is read (issue 24.4)."""

from __future__ import annotations

import shutil
import time
import tracemalloc

import pyarrow.parquet as pq
import pytest
import torch

import tali
from tali import TaliConfig
from tali.data.cache import SampleCache

TITLES = TaliConfig(modalities=("youtube_title_text",))  # deterministic: one entry per row


def _by_key(stream) -> dict[int, dict]:
    return {s["key"]: s for s in stream}


@pytest.fixture()
def warm(sample_root, tmp_path):
    cache = SampleCache(tmp_path / "cache", TITLES)
    first = _by_key(tali.load(sample_root, split="val", config=TITLES, cache=cache, shuffle=False))
    assert cache.writes == len(first) == 4
    return cache, first


def test_a_valid_entry_copied_over_another_rows_is_not_served(sample_root, warm):
    cache, first = warm
    shutil.copy(cache.path(3, 0), cache.path(0, 0))  # row 3's well-formed entry as row 0's
    second = _by_key(tali.load(sample_root, split="val", config=TITLES, cache=cache, shuffle=False))
    assert {k: s["item_idx"] for k, s in second.items()} == {k: s["item_idx"] for k, s in first.items()}
    assert second[0]["youtube_title_text"] == first[0]["youtube_title_text"]
    assert cache.corrupt == 1 and cache.hits == 3


def test_entries_of_another_source_are_not_served(sample_root, warm, tmp_path):
    """Same file name, same row-group layout, other rows: a cache keyed on row numbers alone
    served the old rows' samples for the new ones."""
    cache, first = warm
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    shard = sample_root / "data" / "val-00000-of-00001.parquet"
    table = pq.read_table(shard)
    layout = pq.ParquetFile(shard).metadata
    pq.write_table(
        table.take([3, 2, 1, 0]), other / "data" / shard.name, row_group_size=layout.row_group(0).num_rows
    )
    swapped = _by_key(tali.load(other, split="val", config=TITLES, cache=cache, shuffle=False))
    assert [swapped[k]["item_idx"] for k in range(4)] == [first[k]["item_idx"] for k in (3, 2, 1, 0)]
    assert cache.hits == 0


def test_a_sparse_64_gb_entry_is_refused_before_it_is_read(warm):
    cache, _ = warm
    path = cache.path(1, 0)
    with open(path, "r+b") as handle:  # sparse: no disk used; reading it gave MemoryError in a worker
        handle.truncate(64 << 30)
    tracemalloc.start()
    started = time.monotonic()
    try:
        assert cache.get(1, 0) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 1.0 and peak < 1 << 20
    assert cache.corrupt == 1 and not path.exists()


def test_an_entry_over_max_entry_bytes_is_not_written(tmp_path):
    cache = SampleCache(tmp_path, TITLES, max_entry_bytes=10_000)
    cache.put(0, 0, {"x": torch.zeros(100_000, dtype=torch.uint8)})
    cache.put(1, 0, {"x": torch.zeros(100, dtype=torch.uint8)})
    assert cache.unstorable == 1 and cache.writes == 1 and not cache.path(0, 0).exists()
    assert cache.get(1, 0)["x"].shape == (100,)
    with pytest.raises(tali.TaliConfigError, match="max_entry_bytes must be a positive int"):
        SampleCache(tmp_path, TITLES, max_entry_bytes=0)
