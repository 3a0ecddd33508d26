"""tali.load over local and fsspec sources, the map-style distributed sampler,
the processed-sample cache and HF datasets interop."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch

import tali
from tali import SampleCache, TaliConfig, TaliDataset, TaliDistributedSampler, TaliStream, TaliTransform
from tali.data.cache import is_deterministic
from tali.errors import TaliConfigError, TaliSchemaError, TaliSourceError

from .conftest import TEXT

FIXED = TEXT.replace(window=tali.config.WindowConfig(start="centre"), text=tali.TextConfig(fallback="first"))


def keys(stream):
    return sorted(s["key"] for s in stream)


def test_load_local_directory_files_and_slices(sample_root, train_files):
    assert isinstance(tali.load(sample_root, split="train", config=TEXT), TaliStream)
    assert keys(tali.load(sample_root, split="train", config=TEXT)) == list(range(16))
    assert keys(tali.load(sample_root, split="train[:50%]", config=TEXT)) == list(range(8))
    assert keys(tali.load(sample_root, split="train[1:]", config=TEXT)) == list(range(8))
    one = tali.load(sample_root, split="train", shards=["train-00001-of-00002.parquet"], config=TEXT)
    assert one.files == [train_files[1]]
    assert keys(tali.load(train_files, config=TEXT)) == list(range(16))
    mapped = tali.load(sample_root, split="val", streaming=False, modalities=["youtube_title_text"])
    assert isinstance(mapped, TaliDataset) and len(mapped) == 4
    assert mapped.config.modalities == (tali.SubModality.YOUTUBE_TITLE_TEXT,)


def test_load_fsspec_memory_and_file_urls(sample_root, truth):
    fs = fsspec.filesystem("memory")
    for path in sorted((sample_root / "data").glob("val-*.parquet")):
        fs.pipe(f"/tali-test/data/{path.name}", path.read_bytes())
    try:
        stream = tali.load("memory://tali-test", split="val", config=TEXT)
        assert sorted(s["item_idx"] for s in stream) == [16, 17, 18, 19]
        # Workers open the same filesystem through a picklable opener.
        batches = list(
            tali.load("memory://tali-test", split="val", config=TEXT).loader(batch_size=2, num_workers=2)
        )
        assert sorted(i for b in batches for i in b["item_idx"].tolist()) == [16, 17, 18, 19]
        mapped = tali.load("memory://tali-test", split="val", config=TEXT, streaming=False)
        assert [mapped[i]["item_idx"] for i in range(len(mapped))] == [16, 17, 18, 19]
    finally:
        fs.rm("/tali-test", recursive=True)
    url = f"file://{sample_root}"
    assert keys(tali.load(url, split="test", config=TEXT)) == [0, 1, 2, 3]
    single = tali.load(f"file://{sample_root}/data/test-00000-of-00001.parquet", config=TEXT)
    assert len(single) == 4


def test_load_errors(sample_root, tmp_path):
    with pytest.raises(
        TaliSourceError, match=r"no such local path .*nearest existing directory is " + str(tmp_path)
    ):
        tali.load(str(tmp_path / "missing" / "deeper" / "x"))
    with pytest.raises(TaliSourceError, match="no parquet shards for split 'dev'"):
        tali.load(f"file://{sample_root}", split="dev")
    with pytest.raises(TaliSourceError, match="no parquet shards for split 'dev'"):
        tali.load(sample_root, split="dev")
    # one item_ids rule for both loaders: kept rows, and a missing id names the split
    assert [
        s["item_idx"] for s in tali.load(sample_root, split="val", streaming=False, item_ids={17, 19})
    ] == [17, 19]
    for streaming in (True, False):
        with pytest.raises(TaliConfigError, match=r"1 of 2 item_ids are not in split 'val'"):
            tali.load(sample_root, split="val", streaming=streaming, item_ids={16, 3})
    with pytest.raises(TaliConfigError, match="shard index 3 out of range"):
        tali.load(sample_root, split="train", shards=[3])
    with pytest.raises(TaliSourceError, match="an empty list of files"):
        tali.load([])
    broken = tmp_path / "broken" / "data"
    broken.mkdir(parents=True)
    (broken / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(TaliSourceError, match="cannot read parquet footer"):
        tali.load(broken.parent, split="train")


@pytest.mark.parametrize("world", [2, 3])
def test_distributed_sampler_each_index_once(sample_root, world):
    ds = tali.load(sample_root, split="train", streaming=False, config=TEXT)
    per_rank = [list(TaliDistributedSampler(ds, rank=r, world_size=world, seed=1)) for r in range(world)]
    assert sorted(i for part in per_rank for i in part) == list(range(16))
    assert max(map(len, per_rank)) - min(map(len, per_rank)) <= 1
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=4,
        collate_fn=tali.collate,
        sampler=TaliDistributedSampler(ds, rank=0, world_size=world, seed=1),
    )
    assert sorted(k for b in loader for k in b["key"].tolist()) == sorted(per_rank[0])
    drop = [list(TaliDistributedSampler(ds, rank=r, world_size=3, equal_per_rank="drop")) for r in range(3)]
    assert [len(p) for p in drop] == [5, 5, 5] and len({i for p in drop for i in p}) == 15
    pad = [list(TaliDistributedSampler(ds, rank=r, world_size=3, equal_per_rank="pad")) for r in range(3)]
    assert [len(p) for p in pad] == [6, 6, 6] and {i for p in pad for i in p} == set(range(16))


def test_distributed_sampler_epochs_and_resume(sample_root):
    ds = tali.load(sample_root, split="train", streaming=False, config=TEXT)
    sampler = TaliDistributedSampler(ds, rank=1, world_size=2, seed=3)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != epoch0 and sorted(sampler) != []
    state = sampler.state_dict(consumed=3)
    again = TaliDistributedSampler(ds, rank=1, world_size=2, seed=3)
    again.load_state_dict(state)
    assert list(again) == list(sampler)[3:]
    with pytest.raises(TaliConfigError, match="sampler state is for world_size=2"):
        TaliDistributedSampler(ds, rank=0, world_size=3, seed=3).load_state_dict(state)


def test_cache_second_epoch_reads_no_rows(sample_root, tmp_path):
    cache = SampleCache(tmp_path / "c", FIXED)
    assert cache.deterministic
    first = {s["key"]: s for s in tali.load(sample_root, split="val", config=FIXED, cache=cache)}
    assert cache.writes == 4 and cache.hits == 0
    stream = tali.load(sample_root, split="val", config=FIXED, cache=cache)
    stream.set_epoch(1)
    stream._read_unit = None  # any row-group read would now fail: everything must come from the cache
    second = {s["key"]: s for s in stream}
    assert cache.hits == 4
    for key, sample in first.items():
        assert second[key]["youtube_subtitle_text"] == sample["youtube_subtitle_text"]
        assert second[key]["window"] == sample["window"]


def test_cache_keys_random_configs_by_epoch_and_configs_by_fingerprint(tmp_path):
    random_cache = SampleCache(tmp_path, TEXT)
    assert not random_cache.deterministic and not is_deterministic(TEXT)
    assert random_cache.path(5, 0) != random_cache.path(5, 1)
    fixed = SampleCache(tmp_path, FIXED)
    assert fixed.path(5, 0) == fixed.path(5, 1)
    assert fixed.path(5, 0).parts[-4] != random_cache.path(5, 0).parts[-4]  # fingerprint directory
    assert is_deterministic(TaliConfig(modalities=("youtube_title_text",)))
    assert not is_deterministic(TaliConfig(modalities=("youtube_random_video_frame",)))
    with pytest.raises(TaliConfigError, match="max_bytes must be a positive int"):
        SampleCache(tmp_path, TEXT, max_bytes=0)


def test_cache_evicts_stale_configs_first_then_least_recent(tmp_path):
    sample = {"x": torch.zeros(1000, dtype=torch.uint8)}
    old = SampleCache(tmp_path, TEXT, max_bytes=10**9)
    for k in range(3):
        old.put(k, 0, sample)
    cache = SampleCache(tmp_path, FIXED, max_bytes=8_000, scan_every=1000)
    for k in range(10):
        cache.put(k, 0, sample)
        os.utime(cache.path(k, 0), (k, k))  # deterministic recency: key 0 oldest
    entry = cache.path(0, 0).stat().st_size
    cache.evict()
    assert cache.size_bytes() <= 0.9 * 8_000
    assert not any(old.path(k, 0).exists() for k in range(3))
    survivors = [k for k in range(10) if cache.path(k, 0).exists()]
    assert survivors == list(range(10 - len(survivors), 10)) and len(survivors) == int(0.9 * 8_000) // entry
    assert cache.get(0, 0) is None and cache.get(9, 0)["x"].shape == (1000,)


def _writer(root: str, worker: int) -> None:
    cache = SampleCache(root, FIXED, max_bytes=10**9)
    for round_ in range(20):
        for key in range(8):
            cache.put(key, 0, {"key": key, "payload": torch.full((5000,), key, dtype=torch.int32)})
            got = cache.get((key + worker) % 8, 0)
            if got is not None:
                assert int(got["payload"][0]) == got["key"] == (key + worker) % 8


def test_cache_is_safe_with_concurrent_writers(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    cache = SampleCache(tmp_path, FIXED)
    assert [int(cache.get(k, 0)["payload"][0]) for k in range(8)] == list(range(8))
    assert not list(Path(tmp_path).rglob("*.tmp"))


def test_cache_drops_a_torn_entry(tmp_path):
    cache = SampleCache(tmp_path, FIXED)
    cache.put(1, 0, {"x": torch.ones(3)})
    cache.path(1, 0).write_bytes(b"torn")
    assert cache.get(1, 0) is None and not cache.path(1, 0).exists()


def test_hf_dataset_with_transform_matches_tali(sample_root, tmp_path):
    import datasets

    files = [str(p) for p in sorted((sample_root / "data").glob("val-*.parquet"))]
    ds = datasets.Dataset.from_parquet(files, cache_dir=str(tmp_path / "hf"))
    config = TaliConfig(
        modalities=("wikipedia_caption_image", "wikipedia_caption_text", "youtube_subtitle_text")
    )
    view = tali.hf.prepare(ds).with_transform(tali.hf.as_transform(config))
    ours = TaliTransform(config)
    for i in range(len(ds)):
        got = view[i]
        row = ds[i]
        want = ours(row, key=row["item_idx"], epoch=0)
        assert torch.equal(
            got["wikipedia_caption_image"]["pixels"], want["wikipedia_caption_image"]["pixels"]
        )
        assert got["wikipedia_caption_text"] == want["wikipedia_caption_text"]
        assert got["window"] == want["window"]
        code = tali.sample_data.read_image_code(
            got["wikipedia_caption_image"]["pixels"].permute(1, 2, 0).numpy()
        )
        assert code == row["item_idx"]
    batch = view[0:2]
    assert [len(v) for v in batch.values()] == [2] * len(batch)


def test_hf_iterable_dataset_map(sample_root):
    import datasets

    files = [str(p) for p in sorted((sample_root / "data").glob("val-*.parquet"))]
    ids = datasets.load_dataset("parquet", data_files={"val": files}, split="val", streaming=True)
    transform = tali.hf.as_transform(TEXT, epoch=2)
    mapped = tali.hf.prepare(ids).map(
        transform, batched=True, batch_size=2, remove_columns=list(ids.column_names)
    )
    got = list(mapped)
    assert sorted(s["item_idx"] for s in got) == [16, 17, 18, 19]
    assert all(s["epoch"] == 2 for s in got)
    with pytest.raises(TaliSchemaError, match="need an integer item_idx"):
        transform({"item_idx": None})


class _Planted:
    """Unpickling this runs ``os.system``: what a hostile file in a shared cache would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_never_runs_and_is_recomputed(sample_root, tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    cache = SampleCache(tmp_path / "c", FIXED)
    stream = tali.load(sample_root, split="val", config=FIXED, cache=cache, shuffle=False)
    honest = {s["key"]: s["youtube_subtitle_text"] for s in stream}
    payload = pickle.dumps({"x": _Planted(str(marker))})
    for key in honest:  # the attacker overwrites every entry, in both the old and the new format
        cache.path(key, 0).write_bytes(payload)
        torch.save({"x": _Planted(str(marker))}, cache.path(key, 0).with_suffix(".pt"), pickle_protocol=2)
    again = SampleCache(tmp_path / "c", FIXED)
    stream = tali.load(sample_root, split="val", config=FIXED, cache=again, shuffle=False)
    assert {s["key"]: s["youtube_subtitle_text"] for s in stream} == honest
    assert not marker.exists()
    assert again.corrupt == 4 and again.hits == 0 and again.writes == 4
    assert all(again.get(k, 0) is not None for k in honest) and again.hits == 4
    assert again.evict(target=0.0) >= 0 and not marker.exists()


def test_cache_round_trips_every_value_kind_and_refuses_foreign_manifests(tmp_path):
    import json

    from PIL import Image

    from tali.data.cache_format import CorruptEntry, decode_sample, encode_sample

    shared = torch.arange(10)
    sample = {
        "t": shared[2:5],
        "same": shared,
        "b": torch.tensor([True, False]),
        "f64": torch.zeros(0, dtype=torch.float64),
        "arr": np.arange(6, dtype=np.int16).reshape(2, 3),
        "pil": [Image.new("RGB", (4, 3), (1, 2, 3))],
        "tuple": (1, "a", None, float("nan"), True),
        "nested": {"text": "ünï", "n": 2**40},
    }
    back = decode_sample(encode_sample(sample))
    assert torch.equal(back["t"], torch.tensor([2, 3, 4])) and torch.equal(back["same"], shared)
    assert back["b"].dtype == torch.bool and back["f64"].shape == (0,)
    assert back["arr"].dtype == np.int16 and back["arr"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["pil"][0].getpixel((0, 0)) == (1, 2, 3) and back["pil"][0].mode == "RGB"
    assert back["tuple"][:3] == (1, "a", None) and np.isnan(back["tuple"][3]) and back["tuple"][4] is True
    assert back["nested"] == {"text": "ünï", "n": 2**40}
    import safetensors.torch

    for manifest in (
        {"format": "other", "root": {"t": "json", "v": 1}},
        {"format": "tali-sample-v1", "root": {"t": "pickle", "v": "gASV..."}},
        {"format": "tali-sample-v1", "root": {"t": "tensor", "k": "9"}},
        {"format": "tali-sample-v1", "root": {"t": "json", "v": {"a": 1}}},
    ):
        blob = safetensors.torch.save({"0": torch.ones(1)}, metadata={"manifest": json.dumps(manifest)})
        with pytest.raises(CorruptEntry):
            decode_sample(blob)
    for junk in (b"", b"\xff" * 8 + b"{}", b"torn", (2**60).to_bytes(8, "little") + b"{"):
        with pytest.raises(CorruptEntry, match="not a safetensors cache entry"):
            decode_sample(junk)
