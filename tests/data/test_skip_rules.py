"""One skip rule for both loaders: a corrupt row group and a long run of bad rows never end a
run under ``skip``/``substitute``; every bad row is recorded once and the books balance. Also the
open-file bound (a real process under a lowered RLIMIT_NOFILE) and the null item_idx sentinel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from tali import TaliConfig, TaliDataset, TaliStream, make_loader
from tali.data.policy import ErrorReport
from tali.errors import TaliDataError, TaliSourceError

TEXT = TaliConfig(modalities=("youtube_title_text", "youtube_subtitle_text"))


def _rows(sample_root, n: int) -> list[dict]:
    base = pq.read_table(sample_root / "data" / "train-00000-of-00002.parquet").to_pylist()
    return [{**base[k % len(base)], "item_idx": k} for k in range(n)]


def _write(rows, path, group: int) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=_SCHEMA[0]), path, row_group_size=group)


_SCHEMA: list[pa.Schema] = []


@pytest.fixture(scope="module")
def corrupt_shard(sample_root, tmp_path_factory):
    """30 rows in 5 row groups of 6; every column chunk of row group 2 (rows 12-17) overwritten."""
    _SCHEMA[:] = [pq.read_schema(sample_root / "data" / "train-00000-of-00002.parquet")]
    path = tmp_path_factory.mktemp("corrupt") / "c.parquet"
    _write(_rows(sample_root, 30), path, 6)
    meta = pq.ParquetFile(path).metadata.row_group(2)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for c in range(meta.num_columns):
        col = meta.column(c)
        start = col.dictionary_page_offset or col.data_page_offset
        size = col.total_compressed_size
        data[start : start + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises: the group is unreadable
        pq.ParquetFile(path).read_row_group(2)
    return path


@pytest.fixture(scope="module")
def long_bad_run(sample_root, tmp_path_factory):
    """120 rows; rows 10..109 (100 in a row: a broken shard's worth) have unparseable subtitles."""
    _SCHEMA[:] = [pq.read_schema(sample_root / "data" / "train-00000-of-00002.parquet")]
    rows = _rows(sample_root, 120)
    for r in rows[10:110]:
        r["youtube_subtitle_text"] = "[a list, not a mapping]"
    path = tmp_path_factory.mktemp("longrun") / "l.parquet"
    _write(rows, path, 8)
    return path


def _map_books(ds, workers=0):
    report, ids = ErrorReport(), []
    for batch in make_loader(ds, batch_size=8, num_workers=workers, shuffle=True):
        report.update(batch)
        ids += batch["item_idx"][batch["valid"]].tolist()
    return report, ids


def _stream_books(stream, workers=2):
    report, ids = ErrorReport(), []
    for batch in stream.loader(batch_size=8, num_workers=workers):
        report.update(batch)
        ids += batch["item_idx"][batch["valid"]].tolist()
    return report, ids


@pytest.mark.parametrize("case", ["corrupt row group", "100 bad rows in a row"])
def test_both_loaders_skip_with_one_rule_and_balanced_books(corrupt_shard, long_bad_run, case):
    path, bad = {
        "corrupt row group": (corrupt_shard, set(range(12, 18))),
        "100 bad rows in a row": (long_bad_run, set(range(10, 110))),
    }[case]
    n = pq.ParquetFile(path).metadata.num_rows
    # map-style: every index served (a stand-in for each bad one), each bad row recorded once
    ds = TaliDataset(files=[str(path)], config=TEXT, on_error="skip")
    report, ids = _map_books(ds, workers=1)
    rows = Counter(r.row for r in report.skipped)
    assert set(rows) == bad and set(rows.values()) == {1}
    assert report.yielded == n and report.yielded + len(report.skipped) == report.read
    assert not bad & set(ids)
    # streaming, 2 workers: each row read once, every one yielded or skipped
    stream = TaliStream([str(path)], config=TEXT, on_error="skip", shuffle=True, buffer_size=4)
    report, ids = _stream_books(stream)
    rows = Counter(r.row for r in report.skipped)
    assert set(rows) == bad and set(rows.values()) == {1}
    assert report.read == n and report.yielded - report.substituted + len(report.skipped) == n
    assert sorted(ids) == sorted(set(range(n)) - bad)
    if case == "corrupt row group":
        assert {r.error for r in report.skipped} == {"TaliSourceError"}
        assert all(r.shard == "c.parquet" for r in report.skipped)
    # substitute: one masked placeholder per bad row, in both
    sub = TaliDataset(files=[str(path)], config=TEXT, on_error="substitute")
    report, ids = _map_books(sub)
    assert report.substituted == len(bad) and report.read == n and sorted(ids) == sorted(set(range(n)) - bad)
    report, _ = _stream_books(TaliStream([str(path)], config=TEXT, on_error="substitute", shuffle=False))
    assert report.substituted == len(bad) and report.read == n
    # raise stays raise
    with pytest.raises((TaliDataError, TaliSourceError)):
        list(TaliStream([str(path)], config=TEXT, shuffle=False))


def test_max_consecutive_bad_means_the_same_in_both_loaders(long_bad_run):
    ds = TaliDataset(files=[str(long_bad_run)], config=TEXT, on_error="skip", max_consecutive_bad=20)
    assert ds[5]["item_idx"] == 5 and ds[100]["item_idx"] == 110  # 10 bad rows stepped over
    with pytest.raises(TaliDataError, match="are all bad .max_consecutive_bad=20"):
        ds[20]
    stream = TaliStream(
        [str(long_bad_run)], config=TEXT, on_error="skip", shuffle=False, max_consecutive_bad=20
    )
    with pytest.raises(TaliDataError, match="21 consecutive bad rows in stream 0"):
        list(stream)
    everything_bad = TaliDataset(files=[str(long_bad_run)], config=TEXT, on_error="skip")
    everything_bad.rows = np.arange(10, 110)  # only the bad rows: nothing can stand in
    with pytest.raises(TaliDataError, match="are all bad"):
        everything_bad[0]


def test_open_shards_are_bounded_under_a_low_fd_limit(sample_root, tmp_path):
    """300 one-row shards, a shuffled map-style pass in a process limited to 64 open files."""
    _SCHEMA[:] = [pq.read_schema(sample_root / "data" / "train-00000-of-00002.parquet")]
    rows = _rows(sample_root, 300)
    for k, row in enumerate(rows):
        pq.write_table(pa.Table.from_pylist([row], schema=_SCHEMA[0]), tmp_path / f"s-{k:04d}.parquet")
    script = textwrap.dedent(
        f"""
        import resource, sys, torch
        from tali import TaliConfig, TaliDataset
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        files = sorted(str(p) for p in __import__("pathlib").Path({str(tmp_path)!r}).glob("s-*.parquet"))
        ds = TaliDataset(files=files, config=TaliConfig(modalities=("youtube_title_text",)),
                         max_open_shards=int(sys.argv[1]))
        seen = sorted(ds[int(i)]["item_idx"] for i in torch.randperm(len(ds)))
        assert seen == list(range(300)), seen[:5]
        print("ok", len(ds.source._files))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    bounded = subprocess.run(
        [sys.executable, "-c", script, "16"], env=env, capture_output=True, text=True, check=False
    )
    assert bounded.returncode == 0 and bounded.stdout.split() == ["ok", "16"], bounded.stderr[-2000:]
    unbounded = subprocess.run(
        [sys.executable, "-c", script, "100000"], env=env, capture_output=True, text=True, check=False
    )
    assert unbounded.returncode != 0 and "Too many open files" in unbounded.stderr  # what the bound prevents


def test_a_null_item_idx_keeps_the_batch_int64(sample_root, tmp_path):
    _SCHEMA[:] = [pq.read_schema(sample_root / "data" / "train-00000-of-00002.parquet")]
    rows = _rows(sample_root, 4)
    rows[2]["item_idx"] = None
    path = tmp_path / "n.parquet"
    _write(rows, path, 2)
    for loader in (
        make_loader(TaliDataset(files=[str(path)], config=TEXT), batch_size=4, num_workers=0),
        TaliStream([str(path)], config=TEXT, shuffle=False).loader(batch_size=4, num_workers=0),
    ):
        batch = next(iter(loader))
        assert batch["item_idx"].dtype == torch.int64 and batch["item_idx"].tolist() == [0, 1, -1, 3]
