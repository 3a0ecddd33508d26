"""The page reader against hostile bytes: every failure is typed and bounded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tali
from tali.data.parquet_thrift import ThriftError, read_page_header, read_struct
from tali.data.row_source import RowSource
from tali.errors import TaliDataError

TITLE = tali.TaliConfig(modalities=("youtube_title_text",))


def test_truncated_nested_and_oversized_thrift_is_refused():
    with pytest.raises(ThriftError, match="ends early"):
        read_page_header(b"\x15\x00\x15")
    deep = b"\x1c" * 100 + b"\x00" * 100  # struct in struct in struct ...
    with pytest.raises(ThriftError, match="nested deeper"):
        read_struct(deep)
    huge_list = b"\x19\xf8\xff\xff\xff\x0f"  # field 1: a list claiming 4 billion elements
    with pytest.raises(ThriftError, match="list of"):
        read_struct(huge_list)
    with pytest.raises(ThriftError):
        read_struct(b"\x1f")  # unknown type 15
    rng = np.random.default_rng(0)
    for _ in range(300):  # random bytes: a ThriftError or a parse, never a hang or another error
        try:
            read_struct(rng.bytes(int(rng.integers(1, 64))))
        except ThriftError:
            pass


def _page_file(path: Path, rows: int = 40) -> None:
    rng = np.random.default_rng(1)
    table = pa.table(
        {
            "item_idx": pa.array(range(rows), pa.int64()),
            "youtube_title_text": pa.array([rng.bytes(20_000).hex() for _ in range(rows)], pa.string()),
        }
    )
    # a page per value: pyarrow checks the page size after each write batch
    pq.write_table(
        table,
        path,
        row_group_size=20,
        write_page_index=True,
        write_batch_size=1,
        data_page_size=1,
        use_dictionary=False,
    )


def test_a_corrupt_page_is_a_located_bad_row(tmp_path, monkeypatch):
    monkeypatch.setenv("TALI_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "data" / "val-00000-of-00001.parquet"
    path.parent.mkdir()
    _page_file(path)
    source = RowSource([str(path)], modalities=TITLE.modalities)
    assert dict(source.layout()["youtube_title_text"]) == {"page": 2}
    ref, offset = source.locate(25)
    pages = source._plan(ref)["youtube_title_text"][0]
    k = pages.page_of(offset)
    with open(path, "r+b") as fh:  # scribble over that page's header and values
        fh.seek(pages.offsets[k])
        fh.write(os.urandom(pages.sizes[k]))
    fresh = RowSource([str(path)], modalities=TITLE.modalities)
    with pytest.raises(TaliDataError, match="cannot read youtube_title_text of row 25") as caught:
        fresh.read_row(25)
    assert caught.value.field == "youtube_title_text" and caught.value.row == 25
    assert fresh.read_row(3).column("item_idx").to_pylist() == [3]  # other rows still read
    # the loaders' policy: the next good row in its place, with a record naming row and field
    ds = tali.TaliDataset(files=[str(path)], config=TITLE, on_error="skip")
    sample = ds[25]
    assert int(sample["item_idx"]) == 26
    (record,) = sample["errors"]
    assert (
        record["row"] == 25 and record["field"] == "youtube_title_text" and record["error"] == "TaliDataError"
    )
    stream = tali.TaliStream([str(path)], config=TITLE, on_error="skip", shuffle=False)
    samples = list(stream)
    assert len(samples) == 39 and sum(len(s["errors"]) for s in samples) == 1  # yielded + skipped == read


def test_page_reads_equal_pyarrow_for_every_codec(tmp_path, monkeypatch):
    monkeypatch.setenv("TALI_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(2)
    values = [None if i % 7 == 3 else rng.bytes(int(rng.integers(5_000, 30_000))) for i in range(30)]
    table = pa.table(
        {"item_idx": pa.array(range(30), pa.int64()), "youtube_title_text": pa.array(values, pa.binary())}
    )
    table = table.set_column(1, "youtube_title_text", table.column(1).cast(pa.string(), safe=False))
    for codec in ("none", "snappy", "gzip", "zstd", "brotli", "lz4"):
        for version in ("1.0", "2.0"):
            path = tmp_path / f"{codec}-{version}" / "x.parquet"
            path.parent.mkdir()
            pq.write_table(
                table,
                path,
                row_group_size=15,
                compression=codec,
                data_page_version=version,
                write_page_index=version == "2.0",  # 1.0 files: page headers are scanned
                write_batch_size=1,
                data_page_size=1,
                use_dictionary=False,
            )
            source = RowSource([str(path)], modalities=TITLE.modalities)
            assert dict(source.layout()["youtube_title_text"]) == {"page": 2}, (codec, version)
            for row in range(30):
                got = source.read_row(row).column("youtube_title_text").cast(pa.binary()).to_pylist()
                assert got == [values[row]], (codec, version, row)


def test_an_oversized_value_is_refused_before_its_page_is_read(tmp_path, monkeypatch):
    """Issue 24 item 12 on the page reader: a clip over ``VideoConfig.max_clip_bytes`` is
    refused from the page index alone, with the decoder's error naming the field."""
    from tali.errors import TaliDecodeError

    monkeypatch.setenv("TALI_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(3)
    sizes = [200_000] * 9 + [6_000_000]
    table = pa.table(
        {
            "item_idx": pa.array(range(10), pa.int64()),
            "youtube_video_content": pa.array([rng.bytes(n) for n in sizes], pa.binary()),
            "youtube_video_starting_time": pa.array(["0"] * 10),
        }
    )
    path = tmp_path / "val-00000-of-00001.parquet"
    pq.write_table(table, path, row_group_size=10, write_page_index=True, write_batch_size=1, data_page_size=1,
                   use_dictionary=False)  # fmt: skip
    config = tali.TaliConfig(
        modalities=("youtube_content_audio",), video=tali.VideoConfig(max_clip_bytes=1_000_000)
    )
    ds = tali.TaliDataset(files=[str(path)], config=config)
    assert dict(ds.source.layout()["youtube_video_content"]) == {"page": 1}
    before = ds.source.bytes_read
    with pytest.raises(TaliDecodeError, match=r"clip is \d+ bytes, over the 1000000-byte limit") as caught:
        ds[9]
    assert caught.value.field == "youtube_video_content" and caught.value.row == 9
    assert ds.source.bytes_read - before < 1_000_000  # the 6 MB page was never read
