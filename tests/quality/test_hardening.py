"""Hostile input is contained: bounded time, bounded memory, no filesystem access."""

from __future__ import annotations

import re
import sys
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from tali import (
    ImageConfig,
    TaliConfig,
    TaliDataset,
    TaliTransform,
    TextConfig,
    VideoConfig,
    WindowConfig,
    make_loader,
)
from tali.data.policy import ErrorReport
from tali.data.rows import row_to_python
from tali.decode.clip import open_clip
from tali.decode.image import decode_image
from tali.decode.subtitles import parse_subtitles
from tali.errors import (
    TaliConfigError,
    TaliDataError,
    TaliDecodeError,
    TaliImageError,
    TaliSchemaError,
    TaliSubtitleError,
)
from tali.quality.mutate import Mutant, _billion_laughs, mutants_to_table, mutate, png_bomb
from tali.schema import TALI_SCHEMA, SubModality

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], str):
        _OPENED.append(args[0])


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one only records while _OPENED is set


@pytest.fixture(scope="module")
def val_rows(sample_root):
    return pq.read_table(sample_root / "data" / "val-00000-of-00001.parquet").to_pylist()


def test_decompression_bomb_is_rejected_from_the_header():
    tracemalloc.start()
    with pytest.raises(TaliImageError, match="image is 10000x10000, over the 64000000-pixel limit"):
        decode_image(png_bomb(10_000, 10_000), size=224, max_pixels=64_000_000, item_idx=3, field="image")
    # Far larger claims trip PIL's own guard first; still a typed, located error.
    with pytest.raises(TaliImageError, match=r"DecompressionBombError.*\[item_idx=3, field=image\]"):
        decode_image(png_bomb(), size=224, max_pixels=64_000_000, item_idx=3, field="image")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2_000_000  # nothing near 30 GB of pixels was allocated


def test_pixel_limit_is_configurable(val_rows):
    transform = TaliTransform(
        TaliConfig(modalities=("wikipedia_caption_image",), image=ImageConfig(max_pixels=1000))
    )
    with pytest.raises(
        TaliImageError, match=r"image is 320x240, over the 1000-pixel limit \[item_idx=16, field=image\]"
    ):
        transform(val_rows[0], key=0)


def test_yaml_bombs_stay_small_and_fail_typed():
    tracemalloc.start()
    with pytest.raises(TaliSubtitleError, match="subtitle text must be a string or a list of strings"):
        parse_subtitles(_billion_laughs(), item_idx=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000  # aliases are never expanded (9**9 strings would be gigabytes)
    with pytest.raises(TaliSubtitleError, match="(?s)not valid YAML.*nesting depth"):
        parse_subtitles("[" * 100_000 + "]" * 100_000, item_idx=1)
    with pytest.raises(TaliSubtitleError, match="over the 1000 limit"):
        parse_subtitles("1.5: " + "x" * 2000, item_idx=1, max_bytes=1000)
    with pytest.raises(TaliSubtitleError, match="mapping of timestamps to text, got a sequence"):
        parse_subtitles("- a\n- b\n", item_idx=1)
    # Tags construct nothing; a python/object tag is refused outright.
    with pytest.raises(TaliSubtitleError, match="unsupported YAML tag"):
        parse_subtitles('1.5: !!python/object/apply:os.system ["echo hi"]')


def test_per_row_decode_time_is_bounded(val_rows):
    config = TaliConfig(
        modalities=("youtube_content_video",),
        window=WindowConfig(seconds=2.0),
        video=VideoConfig(num_frames=4, size=32, max_decode_seconds=1e-6),
    )
    with pytest.raises(
        TaliDecodeError,
        match=r"longer than the 1e-06 s per-row limit \[item_idx=16, field=youtube_video_content\]",
    ):
        TaliTransform(config)(val_rows[0], key=0)
    relaxed = TaliConfig(
        modalities=("youtube_content_video",),
        window=WindowConfig(seconds=2.0),
        video=VideoConfig(num_frames=4, size=32, max_decode_seconds=None),
    )
    assert TaliTransform(relaxed)(val_rows[0], key=0)["youtube_content_video"]["frames"].shape == (
        4,
        3,
        32,
        32,
    )


def test_text_length_is_capped(val_rows):
    config = TaliConfig(modalities=("youtube_title_text",), text=TextConfig(max_text_chars=10))
    with pytest.raises(
        TaliDataError,
        match=r"text is 16 characters, over the 10-character limit \[item_idx=16, field=youtube_title_text\]",
    ):
        TaliTransform(config)(val_rows[0], key=0)
    config = TaliConfig(modalities=("wikipedia_caption_text",), text=TextConfig(max_text_chars=10))
    with pytest.raises(TaliDataError, match=r"13 characters.*field=wit_features.wikipedia_caption_text\]"):
        TaliTransform(config)(val_rows[0], key=0)


def test_invalid_utf8_names_the_column():
    table = pa.table(
        {
            "item_idx": pa.array([5], pa.int64()),
            "youtube_title_text": pa.array([b"\xff\xfe"], pa.binary()).view(pa.string()),
        }
    )
    with pytest.raises(
        TaliSchemaError,
        match=r"column youtube_title_text cannot be read.*\[item_idx=5, field=youtube_title_text\]",
    ):
        row_to_python(table, 0)


def test_limits_are_checked_at_construction():
    with pytest.raises(TaliConfigError, match="VideoConfig.max_decode_seconds must be > 0, got 0"):
        VideoConfig(max_decode_seconds=0)
    with pytest.raises(TaliConfigError, match="TextConfig.max_text_chars must be > 0, got -1"):
        TextConfig(max_text_chars=-1)


def test_no_path_from_a_row_is_ever_opened(val_rows, tmp_path):
    """Rows whose path fields point at a real local file: decoding never opens it."""
    global _OPENED
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(val_rows[0]["youtube_video_content"])
    secret_png = tmp_path / "secret.png"
    secret_png.write_bytes(val_rows[1]["image"]["bytes"])
    rows = []
    for k, row in enumerate(val_rows):
        row = dict(
            row,
            youtube_video_file_path=str(secret),
            image={"bytes": row["image"]["bytes"], "path": str(secret_png)},
        )
        if k == 0:  # no bytes at all: a loader tempted to fall back to the path would open it
            row["image"] = {"bytes": None, "path": str(secret_png)}
            row["youtube_video_content"] = None
        rows.append(row)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=TALI_SCHEMA), path)
    config = TaliConfig(
        window=WindowConfig(seconds=1.0), video=VideoConfig(num_frames=2, size=32), image=ImageConfig(size=32)
    )
    ds = TaliDataset(files=[str(path)], config=config, on_error="skip")
    _OPENED = []
    try:
        samples = [ds[i] for i in range(len(ds))]
    finally:
        opened, _OPENED = _OPENED, None
    assert str(secret) not in opened and str(secret_png) not in opened
    assert samples[0]["errors"][0]["field"] == "youtube_video_content"
    # The hook does see Python-level opens (PIL opening a path would show up)...
    _OPENED = []
    try:
        Image.open(str(secret_png)).close()
    finally:
        opened, _OPENED = _OPENED, None
    assert str(secret_png) in opened
    # ...and FFmpeg is only ever handed bytes: a path string is not a clip.
    with pytest.raises(TaliDecodeError, match="cannot open youtube_video_content"):
        open_clip(str(secret), item_idx=0)


def test_books_balance_across_dataloader_workers(val_rows, tmp_path):
    kinds = ["image.bomb", "image.garbage", "image.null_struct", None, None, "image.truncate"] * 3
    rows = []
    for k, kind in enumerate(kinds):
        base = val_rows[k % len(val_rows)]
        row = mutate(base, kind, seed=k).row if kind else dict(base)
        row["item_idx"] = 100 + k
        rows.append(row)
    path = tmp_path / "mixed.parquet"
    pq.write_table(
        mutants_to_table([Mutant(row=r, family="image", kind="", must_fail=None) for r in rows]),
        path,
        row_group_size=4,
    )
    ds = TaliDataset(
        files=[str(path)],
        config=TaliConfig(modalities=("wikipedia_caption_image",), image=ImageConfig(size=32)),
        on_error="skip",
    )
    report = ErrorReport()
    for batch in make_loader(ds, batch_size=4, num_workers=2):
        report.update(batch)
        assert len(batch["item_idx"]) == 4 or report.yielded == len(ds)
    bad = {100 + k for k, kind in enumerate(kinds) if kind}
    assert report.yielded == len(ds) and report.yielded + len(report.skipped) == report.read
    assert {r.item_idx for r in report.skipped} == bad
    assert all(r.shard == "mixed.parquet" and r.row == r.item_idx - 100 for r in report.skipped)
    assert torch.is_tensor(batch["wikipedia_caption_image"]["pixels"])


# --- issue 24.12: refused by size before it becomes Python; subtitle keys checked ---------


@pytest.mark.parametrize(
    ("column", "value", "error", "match"),
    [
        (
            "youtube_video_content",
            b"\0" * (3 << 20),
            TaliDecodeError,
            "clip is 3145728 bytes, over the 2097152",
        ),
        (
            "youtube_subtitle_text",
            "1.5: " + "x" * 300_000,
            TaliSubtitleError,
            "subtitles are 300005 bytes of UTF-8, over the 200000 limit",
        ),
        ("youtube_title_text", "t" * 500_000, TaliDataError, "column youtube_title_text is 500000 bytes"),
    ],
)
def test_an_oversized_value_is_refused_before_it_is_converted(val_rows, column, value, error, match):
    from tali.data.rows import RowLimits

    limits = RowLimits(max_clip_bytes=2 << 20, max_subtitle_bytes=200_000, max_value_bytes=100_000)
    table = pa.Table.from_pylist([dict(val_rows[0], **{column: value})], schema=TALI_SCHEMA)
    tracemalloc.start()
    try:
        with pytest.raises(error, match=match) as caught:
            row_to_python(table, 0, limits=limits)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.field == column and caught.value.item_idx == val_rows[0]["item_idx"]
    assert peak < len(value) // 4  # the value was never copied into a Python object


@pytest.mark.parametrize("loader", ["map", "stream"])
def test_the_loaders_refuse_a_200_mb_clip_before_reading_it(val_rows, tmp_path, loader):
    """A 200 MB clip alone in its row group (read whole: pyarrow's dictionary layout) cost
    777 MB above the process's level, then 587 MB (the row group read), before its refusal.
    The footer's uncompressed size of a one-row group's chunk is that value's size: it is
    refused before a byte of it is read, in both loaders (issue 24 item 12)."""
    from tali import TaliStream

    (tmp_path / "data").mkdir()
    rows = [val_rows[0], dict(val_rows[1], youtube_video_content=b"\0" * 200_000_000), val_rows[2]]
    pq.write_table(
        pa.Table.from_pylist(rows, schema=TALI_SCHEMA), tmp_path / "data" / "val-0.parquet", row_group_size=1
    )
    config = TaliConfig(modalities=("youtube_content_video",))
    tracemalloc.start()
    try:
        if loader == "map":
            ds = TaliDataset(tmp_path, split="val", config=config, on_error="skip")
            (record,) = ds[1]["errors"]  # skip: the bad row is recorded, a good one served in its place
            source = ds.source
        else:
            shards = sorted(str(p) for p in (tmp_path / "data").glob("*.parquet"))
            stream = TaliStream(shards, split="val", config=config, on_error="skip", shuffle=False)
            samples = list(stream)  # the bad row's record rides on the next good sample
            assert [s["item_idx"] for s in samples] == [val_rows[0]["item_idx"], val_rows[2]["item_idx"]]
            (record,) = [r for s in samples for r in s["errors"]]
            source = stream.source
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert record["field"] == "youtube_video_content" and record["error"] == "TaliDecodeError"
    assert re.match(
        r"clip is 2000000\d\d bytes, over the 67108864-byte limit \(its one-row column chunk",
        record["message"],
    )
    assert record["row"] == 1
    assert peak < 50 << 20  # Python objects: no 200 MB bytes was made
    # and the chunk was never read: the good rows are ~0.9 MB each; the zeros' snappy chunk is ~9.4 MB
    assert source.bytes_read < 5 << 20, source.bytes_read


def test_a_row_group_over_its_byte_cap_is_refused_from_the_footer(val_rows, tmp_path):
    """A row group read whole must fit ``max_row_group_bytes`` uncompressed (checked from the
    footer): a hostile 3-row group is refused, each of its rows naming shard, row and field,
    with nothing read; the next group is served."""
    from tali.data.row_source import RowSource
    from tali.data.rows import RowLimits

    rows = [dict(r, youtube_video_content=bytes([k]) * 3_000_000) for k, r in enumerate(val_rows[:3])]
    rows += [val_rows[3]]
    path = tmp_path / "val-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=TALI_SCHEMA), path, row_group_size=3)
    source = RowSource([str(path)], modalities=(SubModality.YOUTUBE_CONTENT_VIDEO,), page_reads=False)
    limits = RowLimits(max_row_group_bytes=8_000_000)
    for row in range(3):
        with pytest.raises(TaliDataError, match="over the 8000000-byte row-group limit") as caught:
            source.read_row(row, limits=limits)
        assert caught.value.field == "youtube_video_content" and caught.value.row == row
        assert caught.value.shard == path.name
    assert source.bytes_read == 0
    ref = source.index.row_groups[0]
    with pytest.raises(TaliDataError, match="row-group limit"):
        source.read_row_group(ref, limits=limits)
    assert source.read_row(3, limits=limits).column("item_idx").to_pylist() == [val_rows[3]["item_idx"]]
    # Under the cap the group is read as before.
    assert source.read_row(1, limits=RowLimits()).column("item_idx").to_pylist() == [val_rows[1]["item_idx"]]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("'1.5': a\n'2.5': b\n'1.5': c\n", "1.5 appears more than once"),
        ("1.5: a\n1.50: b\n", "1.5 appears more than once"),
        ("'1e308': a\n", "beyond 1000000 s"),
        ("'1.5': a\n'123456789012345': b\n", "beyond 1000000 s"),
    ],
)
def test_duplicate_and_absurd_subtitle_timestamps_are_refused(text, match):
    for fast_path in (True, False):
        with pytest.raises(TaliSubtitleError, match=match):
            parse_subtitles(text, item_idx=3, fast_path=fast_path)


def test_only_the_oversized_row_of_a_row_group_is_refused(val_rows):
    from tali.data.rows import RowLimits

    limits = RowLimits(max_value_bytes=100_000)
    rows = [dict(r) for r in val_rows]
    rows[2]["youtube_title_text"] = "t" * 150_000
    table = pa.Table.from_pylist(rows, schema=TALI_SCHEMA)
    for offset in range(len(rows)):  # row by row, as the loaders go through a row group
        if offset == 2:
            with pytest.raises(TaliDataError, match="youtube_title_text is 150000 bytes") as caught:
                row_to_python(table, offset, limits=limits)
            assert caught.value.item_idx == rows[2]["item_idx"]
        else:
            assert row_to_python(table, offset, limits=limits)["item_idx"] == rows[offset]["item_idx"]
