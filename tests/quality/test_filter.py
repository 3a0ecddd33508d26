"""Filtering by SQL and Python predicates; the index applied by TaliDataset; new shards."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tali import TaliConfig, TaliDataset
from tali.cli.main import main
from tali.data.sources import resolve_local_files
from tali.errors import TaliConfigError, TaliSourceError
from tali.quality import load_index, select
from tali.quality.filter import FilterResult, explain

TEXT_ONLY = TaliConfig(modalities=("youtube_title_text",))


def _ids(truth, split, keep):
    return sorted(i for i, t in truth.items() if t["split"] == split and keep(t))


def test_sql_over_metrics_picks_the_doctored_rows(sample_root, metrics_path, truth):
    def where(clause):
        return sorted(select(sample_root, split="train", metrics=metrics_path, where=clause).item_ids)

    assert where("audio_silence_ratio > 0.5") == _ids(truth, "train", lambda t: t["silent"])
    assert where("frozen_frame_ratio > 0.1 OR black_frame_ratio > 0.05") == _ids(
        truth, "train", lambda t: bool(t["frozen_seconds"] or t["black_seconds"])
    )
    assert where("NOT audio_present") == _ids(truth, "train", lambda t: not t["has_audio"])
    assert where("abs(av_start_offset_seconds) > 0.1") == _ids(
        truth, "train", lambda t: t["audio_offset_seconds"]
    )
    # metadata columns and structs are there too, with shard and row
    assert where("list_contains(wit_features.language, 'ja') AND youtube_video_size > 0") == _ids(
        truth, "train", lambda t: "ja" in t["languages"]
    )
    assert where("shard = 'train-00001-of-00002.parquet' AND row = 0") == [8]


def test_python_predicate_and_both_together(sample_root, metrics_path, truth):
    english = select(
        sample_root, split="train", metrics=metrics_path, predicate=lambda r: "en" in r["languages"]
    )
    assert sorted(english.item_ids) == _ids(truth, "train", lambda t: "en" in t["languages"])
    both = select(
        sample_root,
        split="train",
        metrics=metrics_path,
        where="video_fps = 30",
        predicate=lambda r: "en" in r["wit_features"]["language"],
    )
    assert sorted(both.item_ids) == _ids(truth, "train", lambda t: "en" in t["languages"] and t["fps"] == 30)
    everything = select(sample_root, split="train")
    assert everything.read == everything.kept == 16


def test_predicates_never_touch_media_bytes(sample_root, metrics_path):
    plan = explain(sample_root, split="train", metrics=metrics_path, where="youtube_title_text LIKE '%3%'")
    assert "READ_PARQUET" in plan and "youtube_title_text" in plan
    assert "youtube_video_content" not in plan and "image" not in plan.replace("image_", "")
    with pytest.raises(TaliConfigError, match='Referenced column "youtube_video_content" not found'):
        select(sample_root, split="train", where="length(youtube_video_content) > 0")


def test_bad_clauses_raise_typed_errors(sample_root, metrics_path, tmp_path):
    with pytest.raises(TaliConfigError, match="single boolean expression"):
        select(sample_root, split="val", where="true); COPY (SELECT 1) TO 'x.csv'; SELECT (1")
    with pytest.raises(TaliConfigError, match="cannot parse the WHERE clause|Parser"):
        select(sample_root, split="val", where="item_idx >")
    doubled = pa.concat_tables([pq.read_table(metrics_path)] * 2)
    with pytest.raises(TaliSourceError, match="lists item_idx 16 more than once"):
        select(sample_root, split="val", metrics=doubled)
    with pytest.raises(TaliSourceError, match="metrics table not found"):
        select(sample_root, split="val", metrics=tmp_path / "missing.parquet")


def test_index_is_applied_on_the_fly_by_the_dataset(sample_root, metrics_path, truth, tmp_path):
    result = select(
        sample_root,
        split="train",
        metrics=metrics_path,
        where="audio_present AND NOT audio_silence_ratio > 0.5",
    )
    path = result.write_index(tmp_path / "keep.json")
    ids = load_index(path)
    assert ids == result.item_ids and len(ids) == result.kept < result.read
    ds = TaliDataset(sample_root, split="train", config=TEXT_ONLY, item_ids=ids)
    assert len(ds) == len(ids)
    assert [ds[i]["item_idx"] for i in range(len(ds))] == sorted(ids)
    assert [ds[i]["youtube_title_text"]["text"] for i in range(2)] == [
        f"youtube title {i}" for i in sorted(ids)[:2]
    ]
    with pytest.raises(TaliConfigError, match="1 of 2 item_ids are not in split 'train'.*\\[17\\]"):
        TaliDataset(sample_root, split="train", config=TEXT_ONLY, item_ids=[0, 17])
    (tmp_path / "broken.json").write_text('{"item_ids": ["a"]}')
    with pytest.raises(TaliSourceError, match="item_ids must be a list of integers"):
        load_index(tmp_path / "broken.json")


def test_new_shards_keep_the_exact_schema_layout_and_rows(sample_root, metrics_path, truth, tmp_path):
    result = select(
        sample_root, split="train", metrics=metrics_path, where="video_fps = 30 AND audio_present"
    )
    summary = result.write_shards(tmp_path / "clean", rows_per_shard=4, row_group_size=3)
    expected = _ids(truth, "train", lambda t: t["fps"] == 30 and t["has_audio"])
    assert summary.ok and summary.read == 16 and summary.kept == summary.written == len(expected)
    files = resolve_local_files(tmp_path / "clean", "train")
    n = len(files)
    assert [p.rsplit("/", 1)[1] for p in files] == [f"train-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    source_schema = pq.read_schema(resolve_local_files(sample_root, "train")[0])
    for path in files:
        assert pq.read_schema(path).equals(source_schema, check_metadata=True)
        assert pq.ParquetFile(path).metadata.num_rows <= 4
    copied = pq.read_table(files, columns=["item_idx", "youtube_video_content"]).to_pylist()
    assert [r["item_idx"] for r in copied] == expected
    original = {
        r["item_idx"]: r["youtube_video_content"]
        for r in pq.read_table(
            resolve_local_files(sample_root, "train"), columns=["item_idx", "youtube_video_content"]
        ).to_pylist()
    }
    assert all(r["youtube_video_content"] == original[r["item_idx"]] for r in copied)
    ds = TaliDataset(tmp_path / "clean", split="train", config=TEXT_ONLY)  # the loader reads them as-is
    assert len(ds) == len(expected)
    with pytest.raises(TaliSourceError, match="already has train shards"):
        result.write_shards(tmp_path / "clean")


def test_a_failed_write_leaves_no_shard_behind(sample_root, tmp_path):
    shards = resolve_local_files(sample_root, "train")
    # The second source shard asks for a row that does not exist: the copy fails midway.
    broken = FilterResult(
        split="train",
        shards=shards,
        read=16,
        positions={shards[0]: [0, 1, 2], shards[1]: [999]},
        item_ids=[0, 1, 2, 999],
    )
    with pytest.raises(
        TaliSourceError, match="kept row 999 is not in train-00001-of-00002.parquet \\(8 rows\\)"
    ):
        broken.write_shards(tmp_path / "out", rows_per_shard=2)
    # the shard finished before the failure is gone too: nothing was published, no staging is left
    assert not (tmp_path / "out" / "data").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".data.lock"]


def test_nothing_kept_still_writes_a_readable_empty_split(sample_root, tmp_path):
    result = select(sample_root, split="val", where="item_idx < 0")
    summary = result.write_shards(tmp_path / "empty")
    assert summary.ok and summary.kept == 0 and summary.shards == {"val-00000-of-00001.parquet": 0}


def test_cli_filter_prints_reconciled_counts(sample_root, metrics_path, tmp_path, capsys):
    assert (
        main(
            [
                "filter",
                str(sample_root),
                "--split",
                "train",
                "--metrics",
                str(metrics_path),
                "--where",
                "audio_silence_ratio < 0.5",
                "--out",
                str(tmp_path / "o"),
                "--rows-per-shard",
                "5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "read 16 rows, kept 14, dropped 2" in out and "row counts reconcile" in out
    assert (
        main(
            [
                "filter",
                str(sample_root),
                "--split",
                "val",
                "--where",
                "item_idx % 2 = 0",
                "--index",
                str(tmp_path / "i.json"),
            ]
        )
        == 0
    )
    assert load_index(tmp_path / "i.json") == [16, 18]
    assert (
        main(
            [
                "filter",
                str(sample_root),
                "--split",
                "val",
                "--where",
                "no_such_column",
                "--index",
                str(tmp_path / "j.json"),
            ]
        )
        == 1
    )
    assert "no_such_column" in capsys.readouterr().err


def test_shards_with_one_file_name_in_two_folders_stay_apart(sample_root, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(sample_root / "data" / "test-00000-of-00001.parquet", tmp_path / folder / "x.parquet")
    result = select(tmp_path, where="row = 1")
    assert result.kept == 2 and sorted(result.positions) == [str(tmp_path / f / "x.parquet") for f in "ab"]
    assert result.item_ids == [21, 21]
