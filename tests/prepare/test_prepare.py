"""`tali prepare`: layout, provenance, tolerance against the source, failing rows, resume."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tali import AudioConfig, TaliConfig, TaliTransform
from tali.data.durations import load_durations
from tali.errors import TaliConfigError, TaliDecodeError, TaliSourceError
from tali.prepare import METADATA_KEY, PrepareSettings, prepare, read_provenance
from tali.quality.durations import write_durations
from tali.schema import Column

_VIDEO, _SIZE = str(Column.YOUTUBE_VIDEO_CONTENT), str(Column.YOUTUBE_VIDEO_SIZE)
SETTINGS = PrepareSettings()  # what conftest prepares with


def test_prepared_shards_keep_the_layout_schema_and_every_other_column(original_root, prepared_root):
    sources = sorted((original_root / "data").glob("train-*.parquet"))
    outputs = sorted((prepared_root / "data").glob("*.parquet"))
    assert [p.name for p in outputs] == [p.name for p in sources]
    assert not list((prepared_root / "data").glob(".*")), "no partial files left behind"
    for source, output in zip(sources, outputs):
        a, b = pq.ParquetFile(source), pq.ParquetFile(output)
        provenance = json.loads(b.metadata.metadata[METADATA_KEY])
        assert b.schema_arrow.remove_metadata() == a.schema_arrow.remove_metadata()
        assert b.schema_arrow.metadata == a.schema_arrow.metadata, "the HF features metadata is kept"
        assert [b.metadata.row_group(i).num_rows for i in range(b.num_row_groups)] == [
            a.metadata.row_group(i).num_rows for i in range(a.num_row_groups)
        ]
        assert provenance == read_provenance(output)
        assert provenance["source_shard"] == source.name and provenance["source_rows"] == a.metadata.num_rows
        assert provenance["settings"] == SETTINGS.to_dict() and provenance["failures"] == []
        ta, tb = a.read(), b.read()
        for name in ta.column_names:
            if name not in (_VIDEO, _SIZE):
                assert tb.column(name).equals(ta.column(name)), name
        clips = tb.column(_VIDEO).to_pylist()
        assert tb.column(_SIZE).to_pylist() == [len(c) for c in clips]
        assert clips != ta.column(_VIDEO).to_pylist()
    report = json.loads((prepared_root / "tali-prepare.json").read_text())
    assert report["summary"]["reencoded"] == 16 and report["summary"]["clip_size_ratio"] < 1


def test_prepared_samples_match_the_original_within_tolerance(original_rows, rows, same_window):
    """Same window, same frames and audio, within the prepare tolerance (conftest's
    ``assert_same_window``)."""
    transform = TaliTransform(
        TaliConfig(modalities=["video", "audio"], audio=AudioConfig(on_missing="zeros"))
    )
    for item_idx, prepared in rows.items():
        same_window(
            transform(original_rows[item_idx], key=item_idx), transform(prepared, key=item_idx), item_idx
        )


@pytest.fixture(scope="module")
def small_source(original_root, tmp_path_factory) -> Path:
    """Two shards of one short (12 s) clip each, the second clip corrupt."""
    table = pq.read_table(original_root / "data" / "train-00001-of-00002.parquet")
    short = table.filter(pa.compute.equal(table.column("item_idx"), 8))
    root = tmp_path_factory.mktemp("small")
    (root / "data").mkdir()
    pq.write_table(short, root / "data" / "train-00000-of-00002.parquet")
    row = dict(short.to_pylist()[0], **{_VIDEO: b"\x00\x00not an mp4"})
    bad = pa.Table.from_pylist([row], schema=short.schema)
    pq.write_table(bad, root / "data" / "train-00001-of-00002.parquet")
    return root


def test_failing_rows_are_kept_or_dropped_and_always_reported(small_source, tmp_path):
    settings = SETTINGS.replace(preset="ultrafast")
    kept = prepare(small_source, tmp_path / "keep", settings=settings)
    assert not kept.ok and kept.written == 2 and kept.summary()["kept_unchanged"] == 1
    (failure,) = kept.failures
    assert (failure.shard, failure.row, failure.item_idx, failure.action) == (
        "train-00001-of-00002.parquet",
        0,
        8,
        "keep",
    )
    assert failure.error == "TaliDecodeError"
    shard = tmp_path / "keep" / "data" / "train-00001-of-00002.parquet"
    assert pq.read_table(shard).column(_VIDEO).to_pylist() == [b"\x00\x00not an mp4"]
    assert read_provenance(shard)["failures"][0]["item_idx"] == 8
    dropped = prepare(small_source, tmp_path / "drop", settings=settings.replace(on_error="drop"))
    assert dropped.written == 1 and dropped.summary()["dropped"] == 1
    shard = tmp_path / "drop" / "data" / "train-00001-of-00002.parquet"
    assert pq.ParquetFile(shard).metadata.num_rows == 0
    assert read_provenance(shard)["dropped_rows"] == [0]


def test_a_failed_run_leaves_only_complete_shards_and_a_rerun_finishes(small_source, tmp_path):
    settings = SETTINGS.replace(preset="ultrafast", on_error="raise")
    out = tmp_path / "out"
    with pytest.raises(TaliDecodeError, match=r"item_idx=8.*shard=train-00001-of-00002.parquet, row=0"):
        prepare(small_source, out, settings=settings)
    data = out / "data"
    assert not data.exists(), "a failed run publishes nothing (issue 24 item 6)"
    (staged,) = out.glob(".tali-prepare.parts/*/data/train-00000-of-00002.parquet")
    first = staged.stat().st_mtime_ns
    assert not (out / "tali-prepare.json").exists()
    # Repair the bad shard in place; the rerun keeps the finished shard and does the rest.
    good = pq.read_table(small_source / "data" / "train-00000-of-00002.parquet")
    bad_path = small_source / "data" / "train-00001-of-00002.parquet"
    broken = pq.read_table(bad_path)
    pq.write_table(good, bad_path)
    try:
        report = prepare(small_source, out, settings=settings)
    finally:
        pq.write_table(broken, bad_path)
    assert report.ok and report.written == 2
    assert (data / "train-00000-of-00002.parquet").stat().st_mtime_ns == first
    assert (out / "tali-prepare.json").exists() and not (out / ".tali-prepare.parts").exists()


def test_settings_are_checked_at_construction():
    with pytest.raises(TaliConfigError, match="audio_codec must be one of .*'mp3'"):
        PrepareSettings(audio_codec="mp3")
    with pytest.raises(TaliConfigError, match="short_side must be an even int"):
        PrepareSettings(short_side=255)
    with pytest.raises(TaliConfigError, match="on_error must be one of"):
        PrepareSettings(on_error="skip")


def test_cli_prepare_exits_1_and_lists_the_failed_row(small_source, tmp_path, capsys):
    from tali.cli.main import main

    out = tmp_path / "cli"
    code = main(["prepare", str(small_source), str(out), "--preset", "ultrafast", "--no-progress"])
    assert code == 1
    printed = capsys.readouterr().out
    assert (
        "1 of 2 rows re-encoded" in printed and "item_idx=8 train-00001-of-00002.parquet:0 [keep]" in printed
    )
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    good = ["prepare", str(small_source / "data" / "train-00000-of-00002.parquet"), str(tmp_path / "one")]
    assert main([*good, "--preset", "ultrafast", "--no-progress"]) == 0


def test_cli_prepare_counts_the_rotated_clips_it_stored_upright(sample_root, tmp_path, capsys):
    from tali.cli.main import main

    table = pq.read_table(sample_root / "data" / "realworld-00000-of-00001.parquet")
    rotated = table.filter(pa.compute.equal(table.column(str(Column.ITEM_IDX)), 27))  # rotated90
    assert rotated.num_rows == 1
    (tmp_path / "src" / "data").mkdir(parents=True)
    pq.write_table(rotated, tmp_path / "src" / "data" / "train-00000-of-00001.parquet")
    code = main(
        ["prepare", str(tmp_path / "src"), str(tmp_path / "out"), "--preset", "ultrafast", "--no-progress"]
    )
    assert code == 0
    printed = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "1 of 1 rows re-encoded" in printed and "1 display-rotated stored upright" in printed


def test_a_rerun_of_a_finished_prepare_skips_every_shard_and_keeps_its_report(small_source, tmp_path):
    """Issue 25 A6: rerunning a finished ``tali prepare`` re-encodes nothing (its shards keep
    their bytes and times) and its report is the same; ``tali-durations.json`` is carried."""
    source = tmp_path / "source"
    shutil.copytree(small_source, source)
    (written,) = {p.parent for p in write_durations(source)}
    assert (written / "tali-durations.json").exists()
    settings = SETTINGS.replace(preset="ultrafast")
    out = tmp_path / "out"
    first = prepare(source, out, settings=settings)
    shards = sorted((out / "data").glob("*.parquet"))
    stamps = {p.name: p.stat().st_mtime_ns for p in shards}
    report = json.loads((out / "tali-prepare.json").read_text())
    # The index is rewritten for the prepared shards (their sizes, which the loader checks), with
    # the source's lengths: the loader reads the same lengths from both, and warns of nothing.
    carried = json.loads((out / "data" / "tali-durations.json").read_text())
    original = json.loads((source / "data" / "tali-durations.json").read_text())
    assert {n: e["clip_seconds"] for n, e in carried["shards"].items()} == {
        n: e["clip_seconds"] for n, e in original["shards"].items()
    }
    assert all(e["bytes"] == (out / "data" / n).stat().st_size for n, e in carried["shards"].items())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lengths = load_durations(sorted(str(p) for p in (out / "data").glob("*.parquet")))
    assert lengths and lengths == load_durations(sorted(str(p) for p in (source / "data").glob("*.parquet")))
    again = prepare(source, out, settings=settings)
    assert {p.name: p.stat().st_mtime_ns for p in shards} == stamps  # nothing re-encoded
    assert json.loads((out / "tali-prepare.json").read_text()) == report
    assert again.summary() == first.summary()
    # Other settings are another run: everything is encoded again.
    prepare(source, out, settings=settings.replace(crf=30))
    assert all(p.stat().st_mtime_ns != stamps[p.name] for p in shards)


def _reordered(kind: pa.DataType) -> pa.DataType:
    fields = [kind.field(i) for i in range(kind.num_fields)][::-1]
    return pa.struct(fields)


def test_wit_features_with_its_fields_in_another_order_is_prepared(small_source, tmp_path):
    """Issue 23 item 9: the same ``wit_features`` fields in another order are the same data
    (refused before, without saying why); a real difference is named."""
    table = pq.read_table(small_source / "data" / "train-00000-of-00002.parquet")
    index = table.schema.get_field_index("wit_features")
    kind = table.schema.field(index).type
    reordered_type = _reordered(kind)
    values = [None if v is None else dict(reversed(list(v.items()))) for v in table.column(index).to_pylist()]
    reordered = table.set_column(
        index, pa.field("wit_features", reordered_type), pa.array(values, reordered_type)
    )
    assert not reordered.schema.equals(table.schema)
    source = tmp_path / "source"
    (source / "data").mkdir(parents=True)
    pq.write_table(reordered, source / "data" / "train-00000-of-00001.parquet")
    report = prepare(source, tmp_path / "out", settings=SETTINGS.replace(preset="ultrafast"))
    assert report.ok and report.written == 1
    out = pq.read_table(tmp_path / "out" / "data" / "train-00000-of-00001.parquet")
    assert out.column("wit_features").to_pylist() == reordered.column("wit_features").to_pylist()
    broken = tmp_path / "broken"
    (broken / "data").mkdir(parents=True)
    pq.write_table(table.drop_columns(["image_url"]), broken / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(TaliSourceError, match=r"missing columns \['image_url'\]"):
        prepare(broken, tmp_path / "out2", settings=SETTINGS.replace(preset="ultrafast"))
