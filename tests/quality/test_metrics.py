"""Metrics equal what the sample-data generator put into each row."""

from __future__ import annotations

import io
import math

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tali.errors import TaliSourceError
from tali.jobs import part_path
from tali.quality.metrics import METRICS_SCHEMA, MetricsOptions, compute_metrics, parts_dir_for, row_metrics
from tali.quality.similarity import TextEmbedder, cosine_rows


@pytest.fixture(scope="module")
def truth(truth):
    """The 24 generated rows: the real-world split's clips (VFR, cuts, rotation...) have their
    own truth checks in tests/test_decode_media.py; their metrics must only be error-free."""
    return {i: t for i, t in truth.items() if not t.get("realworld")}


def test_table_is_keyed_by_item_idx_with_the_declared_schema(metrics_path, truth):
    table = pq.read_table(metrics_path)
    assert table.schema.equals(METRICS_SCHEMA)
    assert set(truth) < set(table.column("item_idx").to_pylist())  # and the real-world rows
    assert all(errors == [] for errors in table.column("errors").to_pylist())


def test_video_metrics_match_truth(metrics_rows, truth):
    for item, t in truth.items():
        m = metrics_rows[item]
        frames = round(t["duration_seconds"] * t["fps"])
        assert m["video_fps"] == pytest.approx(t["fps"])
        assert (m["video_width"], m["video_height"]) == (t["width"], t["height"])
        assert m["video_frames"] == frames
        assert m["video_duration_seconds"] == pytest.approx(t["duration_seconds"], abs=1 / t["fps"])
        if t["frozen_seconds"]:
            lo, hi = t["frozen_seconds"]
            expected = ((hi - lo) * t["fps"] - 1) / frames  # the first frozen frame still differs
            assert m["frozen_frame_ratio"] == pytest.approx(expected, abs=2 / frames), item
        else:
            assert m["frozen_frame_ratio"] == 0.0, item
        if t["black_seconds"]:
            lo, hi = t["black_seconds"]
            assert m["black_frame_ratio"] == pytest.approx((hi - lo) * t["fps"] / frames, abs=2 / frames), (
                item
            )
        else:
            assert m["black_frame_ratio"] == 0.0, item
    # The flags a user would filter on pick out exactly the doctored rows.
    frozen = {i for i, m in metrics_rows.items() if i in truth and m["frozen_frame_ratio"] > 0.05}
    black = {i for i, m in metrics_rows.items() if i in truth and m["black_frame_ratio"] > 0.05}
    assert frozen == {i for i, t in truth.items() if t["frozen_seconds"]} != set()
    assert black == {i for i, t in truth.items() if t["black_seconds"]} != set()


def test_audio_and_sync_metrics_match_truth(metrics_rows, truth):
    channels = {"mono": 1, "stereo": 2, "5.1": 6}
    for item, t in truth.items():
        m = metrics_rows[item]
        assert m["audio_present"] is t["has_audio"], item
        if not t["has_audio"]:
            assert m["audio_rms_dbfs"] is None and m["av_start_offset_seconds"] is None
            continue
        assert m["audio_sample_rate"] == t["sample_rate"]
        assert m["audio_channels"] == channels[t["audio_layout"]]
        assert m["audio_clipping_ratio"] == 0.0
        if t["silent"]:
            assert m["audio_silence_ratio"] > 0.99 and m["audio_rms_dbfs"] < -60, item
        else:
            assert m["audio_silence_ratio"] < 0.01, item
            if t["audio_layout"] != "5.1":  # surrounds are quiet in 5.1, lowering the mix
                # a 0.3-amplitude sine: 20 log10(0.3 / sqrt 2) = -13.47 dBFS
                assert m["audio_rms_dbfs"] == pytest.approx(20 * math.log10(0.3 / math.sqrt(2)), abs=0.3)
        # AAC frames are 1024 samples: container timestamps are exact to one frame.
        frame = 1024 / t["sample_rate"]
        assert m["av_start_offset_seconds"] == pytest.approx(t["audio_offset_seconds"], abs=frame + 0.005), (
            item
        )
        # ...at each end, so the duration difference is exact to two frames.
        assert m["av_duration_mismatch_seconds"] == pytest.approx(
            -t["audio_offset_seconds"], abs=2 * frame + 0.005
        )
    offsets = {
        i for i, m in metrics_rows.items() if i in truth and abs(m["av_start_offset_seconds"] or 0) > 0.1
    }
    assert offsets == {i for i, t in truth.items() if t["audio_offset_seconds"]} != set()


def test_text_and_image_metrics_match_truth(metrics_rows, truth):
    for item, t in truth.items():
        m = metrics_rows[item]
        assert m["languages"] == t["languages"]
        assert m["num_languages"] == len(t["languages"])
        assert m["caption_language"] == ("en" if "en" in t["languages"] else t["languages"][0])
        assert m["caption_chars"] > 0 and m["youtube_title_chars"] == len(f"youtube title {item}")
        # one subtitle line per clip second ("second N" at N + 0.5), unless null or empty YAML
        expected = int(t["duration_seconds"]) if t["subtitle_kind"] in ("lines", "list_values") else 0
        assert m["subtitle_lines"] == expected, item
        if expected:
            texts = [f"second {t['start_second'] + s}" for s in range(expected)]
            assert m["subtitle_chars"] == sum(map(len, texts))
            assert m["subtitle_lines_total"] == t["video_seconds"]
        assert [m["image_width"], m["image_height"]] == t["image_size"]
        assert m["image_mode"] == t["image_mode"]


def test_similarity_is_a_cosine_and_ranks_related_titles_higher(metrics_rows):
    for m in metrics_rows.values():
        for key in ("title_vs_wikipedia_title", "title_vs_wikipedia_caption"):
            assert -1.0 <= m[key] <= 1.0
    embedder = TextEmbedder()
    a = embedder.encode(["How to bake sourdough bread at home", "How to bake sourdough bread at home", ""])
    b = embedder.encode(["Sourdough: baking bread", "Volcanic eruptions of Iceland", "anything"])
    related, unrelated, empty = cosine_rows(a, b)
    assert related > unrelated + 0.3
    assert empty is None


def _clipped_clip(tmp_path) -> bytes:
    """2 s of 64x64 video with a full-scale square wave: AAC overshoots past 1.0."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=10)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 10, np.uint8), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        t = np.arange(32000) / 16000
        square = np.sign(np.sin(2 * np.pi * 200 * t)).astype(np.float32)[None]
        for start in range(0, square.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(square[:, start : start + 1024]), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    return buffer.getvalue()


def test_clipping_is_measured_on_a_clipped_clip(tmp_path):
    row = {"item_idx": 7, "youtube_video_content": _clipped_clip(tmp_path)}
    m = row_metrics(row)
    # AAC smooths the square's edges, so only its overshoots and plateaus stay at
    # full scale (~2% of samples here); the clean sample rows measure exactly 0.
    assert m["audio_clipping_ratio"] > 0.01
    assert m["audio_rms_dbfs"] > -3
    # the row has no image, subtitles or WIT: those parts are reported, not fatal
    assert any(e.startswith("image: TaliDataError") for e in m["errors"])
    assert any(e.startswith("wit_features: TaliSchemaError") for e in m["errors"])


def test_a_bad_clip_nulls_only_its_own_columns(sample_root):
    row = pq.read_table(sample_root / "data" / "val-00000-of-00001.parquet").slice(0, 1).to_pylist()[0]
    row["youtube_video_content"] = row["youtube_video_content"][:5000]
    m = row_metrics(row)
    assert m["video_frames"] is None and m["audio_present"] is None
    assert m["errors"] and m["errors"][0].startswith("youtube_video_content: TaliDecodeError")
    assert m["languages"] and m["image_width"] == 320  # text and image still measured


def test_metrics_resume_reuses_finished_parts(sample_root, tmp_path):
    """An interrupted run left one shard's part behind: the next run reuses it."""
    out = tmp_path / "m.parquet"
    options = MetricsOptions()
    first = compute_metrics(sample_root, split="test", options=options)
    parts = out.parent / f"{out.name}.parts"
    planted = part_path(
        parts_dir_for(out, options), str(sample_root / "data" / "test-00000-of-00001.parquet"), ".parquet"
    )
    planted.parent.mkdir(parents=True)
    marked = first.set_column(
        first.schema.get_field_index("video_fps"), "video_fps", pa.array([123.0] * first.num_rows)
    )
    pq.write_table(marked, planted)
    resumed = compute_metrics(sample_root, split="test", out=out, options=options)
    assert resumed.column("video_fps").to_pylist() == [123.0] * first.num_rows  # reused, not recomputed
    assert pq.read_table(out).num_rows == first.num_rows
    assert not parts.exists()  # a finished run removes its parts


def test_cli_metrics_writes_the_table(sample_root, tmp_path, capsys):
    from tali.cli.main import main

    out = tmp_path / "m.parquet"
    assert main(["metrics", str(sample_root), "--split", "test", "--out", str(out), "--no-progress"]) == 0
    table = pq.read_table(out)
    assert table.schema.equals(METRICS_SCHEMA) and sorted(table.column("item_idx").to_pylist()) == [
        20,
        21,
        22,
        23,
    ]
    printed = capsys.readouterr().out
    assert "4 rows" in printed and "frozen_frame_ratio" in printed


def test_unreadable_columns_null_only_themselves(sample_root, tmp_path):
    from tali.quality.mutate import Mutant, mutants_to_table, mutate

    base = pq.read_table(sample_root / "data" / "test-00000-of-00001.parquet").slice(0, 1).to_pylist()[0]
    bad = mutate(base, "text.title_invalid_utf8")
    pq.write_table(
        mutants_to_table([bad, Mutant(row=base, family="text", kind="", must_fail=None)]),
        tmp_path / "x.parquet",
    )
    first, second = compute_metrics(tmp_path / "x.parquet").to_pylist()
    assert first["youtube_title_chars"] == 0 and first["video_frames"] == second["video_frames"] > 0
    assert first["errors"] == [
        (
            "youtube_title_text: TaliSchemaError: column youtube_title_text cannot be read as Python values: "
            "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
        )
    ]
    assert second["errors"] == []
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(TaliSourceError, match="cannot read parquet shard .*junk.parquet"):
        compute_metrics(tmp_path / "junk.parquet")
