"""Real-world media, round 2 (issue 23, loader items 1-5): open GOPs, tracks cut mid-GOP,
a second audio stream marked default, window starts computed in floats, colour-tagged
sources. Checked against the sample dataset's ``realworld`` truth: frame codes, per-second
tones, colour patches of known value.
"""

from __future__ import annotations

import io
from typing import Any

import av
import numpy as np
import pytest

from tali import TaliConfig
from tali.config import AudioConfig, VideoConfig, WindowConfig
from tali.decode.audio import decode_audio_window
from tali.decode.clip import open_clip
from tali.decode.index import frames_between
from tali.decode.video import decode_frames_at
from tali.errors import TaliMissingStreamError
from tali.sample_data import expected_frame_code, frame_index_at, read_frame_index
from tali.sample_data.patterns import dominant_hz, tone_hz
from tali.sample_data.realworld import DECOY_HZ
from tali.sample_data.truth import expected_tone_second
from tali.transform import TaliTransform

VIDEO = ("youtube_content_video",)


@pytest.fixture(scope="module")
def by_variant(real_rows, truth) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {truth[i]["variant"]: (row, truth[i]) for i, row in real_rows.items()}


def _decoded(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Every frame FFmpeg shows, start to end: clip seconds (0: the first shown) and keyframe flags."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        got = sorted((f.pts, bool(f.key_frame)) for f in container.decode(stream))
        time_base = stream.time_base  # read while open: a closed container's stream is freed
    origin = got[0][0]
    return (
        np.array([float((p - origin) * time_base) for p, _ in got]),
        np.array([k for _, k in got]),
    )


def _check_real(video: dict[str, Any], truth: dict[str, Any], ref: np.ndarray) -> np.ndarray:
    """Every real slot is a real frame showing its code; returns the real slots' times."""
    mask, pts = video["mask"].numpy(), video["pts_seconds"].numpy()
    for slot in np.flatnonzero(mask):
        t = float(pts[slot])
        assert np.abs(ref - t).min() < 1e-9, t
        code = read_frame_index(video["frames"][slot])
        assert code == expected_frame_code(truth, frame_index_at(truth, t)), (slot, t)
    return pts[mask]


def test_open_gop_windows_find_every_frame(by_variant):
    """Item 1: x264 ``open-gop=1`` (non-IDR keyframes, leading B-frames). A whole-clip window
    asking for 32 random frames of 300 gets 32 real ones (29-31 before: a jump to a later
    keyframe never reset the decoder), each the frame it claims to be."""
    row, truth = by_variant["x264_open_gop"]
    ref, keys = _decoded(row["youtube_video_content"])
    assert ref.size == 300 and keys.sum() == 10
    for key in range(12):
        for selection in ("random", "uniform"):
            config = TaliConfig(
                modalities=(*VIDEO, "youtube_random_video_frame"),
                window=WindowConfig(seconds=None),
                video=VideoConfig(num_frames=32, selection=selection, size=48),
                seed=key,
            )
            sample = TaliTransform(config)(row, key=key)
            real = _check_real(sample["youtube_content_video"], truth, ref)
            assert real.size == 32, (key, selection)
            single = sample["youtube_random_video_frame"]
            t = single["pts_seconds"]
            assert np.abs(ref - t).min() < 1e-9, key
            assert read_frame_index(single["pixels"]) == expected_frame_code(truth, frame_index_at(truth, t))


def test_open_gop_keyframes_only_returns_every_keyframe(by_variant):
    """Item 1: ``keyframes_only`` on an open GOP gives every keyframe (I-frame) of the window,
    each decoded on its own (3 of 10 before)."""
    row, truth = by_variant["x264_open_gop"]
    ref, keys = _decoded(row["youtube_video_content"])
    config = TaliConfig(
        modalities=VIDEO,
        window=WindowConfig(seconds=None),
        video=VideoConfig(num_frames=10, keyframes_only=True, selection="uniform", size=48),
    )
    video = TaliTransform(config)(row, key=0)["youtube_content_video"]
    real = _check_real(video, truth, ref)
    np.testing.assert_allclose(real, ref[keys], atol=1e-9)


@pytest.mark.parametrize("variant", ["cut_nonkey", "cut_nonkey_noedit"])
def test_a_track_cut_mid_gop_starts_at_its_first_keyframe(variant, by_variant):
    """Item 2: a video track that starts on a non-keyframe (copy cut mid-GOP, with and without
    an edit list). Every window decodes (whole clip and ``start="start"`` raised a
    PermissionError text before); the clip starts at its first decodable frame, recorded in
    ``ClipInfo.undecodable_lead_seconds``; audio keeps its own times."""
    row, truth = by_variant[variant]
    data = row["youtube_video_content"]
    ref, _ = _decoded(data)
    with open_clip(data) as clip:
        assert clip.info.undecodable_lead_seconds > 0.5
        lead = clip.info.undecodable_lead_seconds
    for window in (WindowConfig(seconds=None), WindowConfig(seconds=2.0, start="start")):
        config = TaliConfig(
            modalities=(*VIDEO, "youtube_content_audio"),
            window=window,
            video=VideoConfig(num_frames=8, selection="sequential", size=48),
        )
        sample = TaliTransform(config)(row, key=0)
        real = _check_real(sample["youtube_content_video"], truth, ref)
        assert real[0] == 0.0 and real.size == 8
        audio = sample["youtube_content_audio"]
        waveform = audio["waveform"].numpy().reshape(-1)
        # The tone before the clip's first frame is the cut's audio: the window starts at 0.
        for second in range(2):
            piece = waveform[second * 16_000 + 4000 : second * 16_000 + 12_000]
            expected = expected_tone_second(truth, second + 0.5)
            assert dominant_hz(piece, 16_000) == pytest.approx(tone_hz(expected), abs=15), second
    # The stream's first timestamp is ``lead`` before clip time 0: audio there is negative time.
    assert truth["audio_offset_seconds"] == pytest.approx(-lead, abs=2 / 30)  # from the first packet


def test_the_default_audio_stream_is_decoded(by_variant):
    """Item 3: two audio streams, the second marked default: that one plays (ffmpeg and players
    take it; stream 0 before), ``AudioConfig.stream`` picks another."""
    row, truth = by_variant["audio_second_default"]
    data = row["youtube_video_content"]
    with open_clip(data) as clip:
        assert clip.info.audio_stream_index == truth["audio_stream"] == 1
        window = decode_audio_window(clip, 1.0, 1.0, 16_000)
    assert dominant_hz(window.samples[2000:14_000], 16_000) == pytest.approx(tone_hz(1), abs=10)
    config = TaliConfig(
        modalities=("youtube_content_audio",),
        window=WindowConfig(seconds=1.0, start=2.0),
        audio=AudioConfig(stream=0),
    )
    with open_clip(data, audio_stream=0) as clip:
        assert clip.info.audio_stream_index == 0
        decoy = decode_audio_window(clip, 2.0, 1.0, 16_000)
    assert dominant_hz(decoy.samples[2000:14_000], 16_000) == pytest.approx(DECOY_HZ, abs=10)
    assert config.audio.stream == 0
    with pytest.raises(TaliMissingStreamError, match=r"AudioConfig.stream=2 but the clip has 2 audio"):
        open_clip(data, audio_stream=2)


def test_a_window_start_computed_in_floats_keeps_the_frame_on_it(by_variant):
    """Item 5: 25 fps, ``t0 = 0.76 * 3 = 2.2800000000000002``: the frame at 2.28 s is the
    window's first (excluded before, so a uniform 8 of a 0.32 s window got 7 distinct)."""
    row, truth = by_variant["fps25"]
    start = 0.76 * 3
    assert start != 2.28
    with open_clip(row["youtube_video_content"]) as clip:
        frames = frames_between(clip, start, start + 0.32)
        inside = frames.in_window(start, start + 0.32)
        np.testing.assert_allclose(frames.clip_seconds(inside), 2.28 + 0.04 * np.arange(8), atol=1e-9)
        got = decode_frames_at(clip, frames, inside, size=48)
    assert got.found.all()
    codes = [read_frame_index(f) for f in got.pixels]
    assert codes == [expected_frame_code(truth, frame_index_at(truth, 2.28 + 0.04 * i)) for i in range(8)]
    config = TaliConfig(
        modalities=VIDEO,
        window=WindowConfig(seconds=0.32, start=start),
        video=VideoConfig(num_frames=8, selection="uniform", size=48),
    )
    video = TaliTransform(config)(row, key=0)["youtube_content_video"]
    assert np.unique(video["pts_seconds"].numpy()[video["mask"].numpy()]).size == 8


@pytest.mark.parametrize("variant", ["bt709", "full_range", "bt709_10bit"])
def test_colour_tagged_sources_load_their_colours(variant, by_variant):
    """BT.709, full-range and 10-bit sources: the loader's RGB shows each patch's known value
    (what prepare must keep, item 6)."""
    row, truth = by_variant[variant]
    with open_clip(row["youtube_video_content"]) as clip:
        frames = frames_between(clip, 0.5, 0.6)
        got = decode_frames_at(clip, frames, frames.in_window(0.5, 0.6)[:1], size=None)
    picture = got.pixels[0].astype(int)
    for x, y, side, value in truth["colour_patches"]:
        patch = picture[:, y + 6 : y + side - 6, x + 6 : x + side - 6].reshape(3, -1).mean(axis=1)
        assert np.abs(patch - np.array(value)).max() < 4, (variant, value, patch)


def test_the_sample_records_and_obeys_the_audio_stream_choice(by_variant):
    """Through the transform: the default-disposition stream plays and is recorded in the
    sample (``youtube_content_audio.stream``); ``AudioConfig.stream`` picks the other one."""
    row, truth = by_variant["audio_second_default"]
    base = TaliConfig(modalities=("youtube_content_audio",), window=WindowConfig(seconds=1.0, start=2.0))
    audio = TaliTransform(base)(row, key=0)["youtube_content_audio"]
    assert audio["stream"] == truth["audio_stream"] == 1
    assert dominant_hz(audio["waveform"].numpy()[2000:14_000], 16_000) == pytest.approx(tone_hz(2), abs=10)
    chosen = TaliTransform(base.replace(audio=AudioConfig(stream=0)))(row, key=0)["youtube_content_audio"]
    assert chosen["stream"] == 0
    assert dominant_hz(chosen["waveform"].numpy()[2000:14_000], 16_000) == pytest.approx(DECOY_HZ, abs=10)
