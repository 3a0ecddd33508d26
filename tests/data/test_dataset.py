"""Map-style access over the original shards: projection, addressing, workers, epochs."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import torch

import tali
from tali import AudioConfig, TaliConfig, TaliDataset, TaliSchemaError, TaliSourceError
from tali.data.shards import ShardIndex
from tali.sample_data import read_frame_index


@pytest.fixture(scope="module")
def textless_copy(tmp_path_factory, sample_root):
    """The val split with the video and image columns dropped: only text remains."""
    root = tmp_path_factory.mktemp("textonly")
    (root / "data").mkdir()
    for path in (sample_root / "data").glob("val-*.parquet"):
        table = pq.read_table(path).drop_columns(["youtube_video_content", "image"])
        pq.write_table(table, root / "data" / path.name, row_group_size=2)
    return root


def test_index_addresses_rows_across_shards_and_row_groups(sample_root, truth):
    dataset = TaliDataset(sample_root, split="train", config=TaliConfig(modalities=["youtube_title_text"]))
    assert len(dataset) == 16 and len(dataset.index.row_groups) == 6  # 8 rows per shard in groups of 3
    assert [dataset[i]["item_idx"] for i in range(16)] == sorted(
        i for i, t in truth.items() if t["split"] == "train"
    )
    assert dataset[-1]["item_idx"] == 15
    with pytest.raises(IndexError):
        dataset[16]


def test_text_only_config_reads_no_media_columns(textless_copy):
    config = TaliConfig(modalities=["text"])
    dataset = TaliDataset(textless_copy, split="val", config=config)
    assert "youtube_video_content" not in dataset.columns and "image" not in dataset.columns
    assert dataset[0]["youtube_title_text"]["text"] == "youtube title 16"
    table = dataset.source.read_row_group(dataset.index.row_groups[0])
    assert "youtube_video_content" not in table.column_names
    with pytest.raises(TaliSchemaError, match="no youtube_video_content column"):
        TaliDataset(textless_copy, split="val", config=TaliConfig(modalities=["video"]))[0]


def test_dataloader_with_workers_is_reproducible_per_seed_epoch_and_row(sample_root):
    config = TaliConfig(modalities=["video", "audio"], audio=AudioConfig(on_missing="zeros"), seed=11)
    dataset = TaliDataset(sample_root, split="train", config=config)

    def epoch_starts(epoch, workers):
        dataset.set_epoch(epoch)
        batches = list(tali.make_loader(dataset, batch_size=4, num_workers=workers))
        return torch.cat([b["window"]["start_seconds"] for b in batches]), batches

    a, batches = epoch_starts(0, 2)
    b, _ = epoch_starts(0, 0)
    c, _ = epoch_starts(1, 2)
    assert torch.equal(a, b), "the same samples with or without workers"
    assert not torch.equal(a, c), "a new epoch draws new windows"
    assert len(set(a.tolist())) == 16, "samples draw different windows"
    batch = batches[0]
    assert batch["youtube_content_video"]["frames"].shape == (4, 8, 3, 224, 224)
    assert batch["youtube_content_audio"]["waveform"].shape == (4, 48_000)
    frame = batch["youtube_content_video"]["frames"][0, 0]
    assert read_frame_index(frame) == round(float(batch["youtube_content_video"]["pts_seconds"][0, 0]) * 30)


def test_collate_keeps_lists_for_text_and_uneven_shapes():
    samples = [
        {"t": {"text": ["a", "b"]}, "x": torch.zeros(2), "n": 1, "f": 0.5, "flag": True},
        {"t": {"text": ["c"]}, "x": torch.zeros(3), "n": 2, "f": 1.5, "flag": False},
    ]
    batch = tali.collate(samples)
    assert batch["t"]["text"] == [["a", "b"], ["c"]]
    assert isinstance(batch["x"], list) and len(batch["x"]) == 2
    assert (
        batch["n"].dtype == torch.int64
        and batch["f"].dtype == torch.float64
        and batch["flag"].dtype == torch.bool
    )
    with pytest.raises(ValueError, match="disagree on keys"):
        tali.collate([{"a": 1}, {"b": 1}])


def test_sources(sample_root, tmp_path):
    files = sorted(str(p) for p in (sample_root / "data").glob("train-*.parquet"))
    assert len(TaliDataset(files=files, config=TaliConfig(modalities=["text"]))) == 16
    assert len(TaliDataset(files[0], config=TaliConfig(modalities=["text"]))) == 8
    with pytest.raises(TaliSourceError, match="no parquet shards for split 'dev'"):
        TaliDataset(sample_root, split="dev")
    with pytest.raises(TaliSourceError, match="no such file or directory"):
        TaliDataset(tmp_path / "nope")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 definitely not parquet")
    with pytest.raises(TaliSourceError, match="cannot read parquet footer"):
        ShardIndex.from_files([str(bad)])
