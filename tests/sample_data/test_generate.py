"""The sample dataset holds what its truth record says, read back through PyAV and PIL."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from tali.sample_data import (
    REALWORLD_VARIANTS,
    VARIANTS,
    ClipSpec,
    encode_clip,
    read_frame_index,
    read_image_code,
    tone_seconds,
)
from tali.sample_data.patterns import CodeUnreadable, draw_code, read_code


def test_hub_layout_and_size(sample_root):
    names = sorted(p.name for p in (sample_root / "data").glob("*.parquet"))
    assert names == [
        "realworld-00000-of-00001.parquet",
        "test-00000-of-00001.parquet",
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
        "val-00000-of-00001.parquet",
    ]
    total = sum(p.stat().st_size for p in (sample_root / "data").glob("*.parquet"))
    assert total < 40e6


def test_every_variant_is_present_and_streams_match_truth(rows, truth):
    assert {t["variant"] for t in truth.values() if not t.get("realworld")} == {v.variant for v in VARIANTS}
    assert {t["variant"] for t in truth.values() if t.get("realworld")} == {
        v.variant for v in REALWORLD_VARIANTS
    }
    for item_idx, t in truth.items():
        if t.get("realworld"):  # their streams: tests/test_decode_media.py
            continue
        with av.open(io.BytesIO(rows[item_idx]["youtube_video_content"])) as container:
            video = container.streams.video[0]
            assert (video.codec_context.width, video.codec_context.height) == (t["width"], t["height"])
            assert float(video.average_rate) == t["fps"] and video.codec_context.name == "h264"
            assert float(video.duration * video.time_base) == pytest.approx(t["duration_seconds"])
            if not t["has_audio"]:
                assert not container.streams.audio
                continue
            audio = container.streams.audio[0]
            assert audio.codec_context.name == "aac" and audio.rate == t["sample_rate"]
            assert audio.layout.name == t["audio_layout"]
            start = float(audio.start_time * audio.time_base)
            # AAC priming moves the first packet up to one frame (1024 samples) early.
            assert (
                t["audio_offset_seconds"] - 1024 / t["sample_rate"] - 1e-3
                <= start
                <= t["audio_offset_seconds"] + 1e-3
            )


def test_keyframe_interval_matches_truth(rows, truth):
    for item_idx in (0, 6):
        with av.open(io.BytesIO(rows[item_idx]["youtube_video_content"])) as container:
            stream = container.streams.video[0]
            keys = [
                float(p.pts * stream.time_base)
                for p in container.demux(stream)
                if p.is_keyframe and p.pts is not None
            ]
        gop = truth[item_idx]["gop_seconds"]
        assert sorted(keys) == pytest.approx([k * gop for k in range(len(keys))])


def test_frame_codes_survive_compression_and_downscaling(rows):
    with av.open(io.BytesIO(rows[2]["youtube_video_content"])) as container:  # 1280x720
        for index, frame in enumerate(container.decode(video=0)):
            if index % 37:
                continue
            for size in (None, 224, 112):
                rgb = (
                    frame.to_ndarray(format="rgb24")
                    if size is None
                    else frame.reformat(width=size * 16 // 9, height=size, format="rgb24").to_ndarray()
                )
                assert read_frame_index(rgb) == index


def test_audio_tones_encode_the_clip_second():
    spec = ClipSpec(duration_seconds=3.0, sample_rate=48_000, audio_layout="mono")
    with av.open(io.BytesIO(encode_clip(spec))) as container:
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    seconds = [s for _, s in tone_seconds(samples, 48_000, 0.0)]
    assert seconds[1:] == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2][: len(seconds) - 1]


def test_generation_is_deterministic():
    spec = ClipSpec(duration_seconds=1.0, width=320, height=180)
    assert encode_clip(spec) == encode_clip(spec)


def test_images_of_every_mode_carry_their_item(rows, truth):
    for item_idx, row in rows.items():
        image = Image.open(io.BytesIO(row["image"]["bytes"]))
        assert (
            image.mode == truth[item_idx]["image_mode"] and list(image.size) == truth[item_idx]["image_size"]
        )
        if image.mode not in ("I;16",):
            assert read_image_code(image) == item_idx


def test_code_reader_rejects_pixels_without_a_code():
    canvas = np.full((100, 100, 3), 128, np.uint8)
    with pytest.raises(CodeUnreadable):
        read_code(canvas)
    draw_code(canvas, 4095)
    assert read_code(canvas) == 4095
    with pytest.raises(ValueError, match="does not fit"):
        draw_code(canvas, 4096)


def test_wit_features_vary_languages_and_nulls(rows, truth):
    languages = [tuple(t["languages"]) for t in truth.values()]
    assert any("en" not in langs for langs in languages) and any(len(langs) == 3 for langs in languages)
    assert any(None in row["wit_features"]["caption_reference_description"] for row in rows.values())
    kinds = {t["subtitle_kind"] for t in truth.values()}
    assert kinds == {"lines", "null", "empty", "list_values"}
