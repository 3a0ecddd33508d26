"""The audio window's fast path (numpy downmix, one polyphase product per gapless
run) gives the samples swresample gives frame by frame, on every clip it applies
to; other sample formats take swresample's path and land at the right time."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from tali.decode import audio
from tali.decode.clip import open_clip


@pytest.mark.parametrize(
    ("start", "seconds", "rate"), [(0.0, 3.0, 16_000), (7.3, 10.0, 22_050), (27.5, 3.0, 16_000)]
)
def test_fast_path_equals_swresample_frame_by_frame(rows, truth, start, seconds, rate):
    checked, layouts = 0, set()
    for item, row in rows.items():
        # A fresh clip for each path: a clip decoded once and sought back to 0 starts
        # its AAC decoder from other state (the first ~13 ms differ), on either path.
        clips = [open_clip(row["youtube_video_content"], item_idx=item) for _ in range(2)]
        if clips[0].audio is None:
            continue
        fast, general = (audio._Window(c, start, seconds, rate) for c in clips)
        audio._by_runs(clips[0], fast)
        audio._by_frames(clips[1], general)
        assert (fast.filled.sum() > 0) == (truth[item]["duration_seconds"] > start)
        np.testing.assert_array_equal(fast.filled, general.filled)
        np.testing.assert_allclose(fast.out, general.out, atol=1e-6, rtol=0)
        checked += 1
        layouts.add(truth[item]["audio_layout"])
    assert {"mono", "stereo", "5.1"} <= layouts and checked >= 10


def test_downmix_weights_are_swresamples():
    """Measured weights reproduce swresample's own downmix of random audio."""
    rng = np.random.default_rng(0)
    assert np.allclose(audio.downmix_weights("stereo"), np.sqrt(0.5))
    assert audio.downmix_weights("5.1")[3] == 0  # the LFE channel is dropped
    assert audio.downmix_weights("no such layout") is None  # -> the frame-by-frame path
    for layout in ("mono", "stereo", "5.1", "quad", "7.1"):
        weights = audio.downmix_weights(layout)
        planes = rng.standard_normal((weights.size, 1000)).astype(np.float32)
        frame = av.AudioFrame(format="fltp", layout=layout, samples=1000)
        for plane, values in zip(frame.planes, planes, strict=False):
            plane.update(values)
        frame.sample_rate = 48_000
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48_000)
        expected = np.concatenate([f.to_ndarray().reshape(-1) for f in resampler.resample(frame)])
        np.testing.assert_allclose(weights @ planes, expected, atol=1e-6)


def _alac_clip(seconds: float = 4.0, rate: int = 44_100, tone: float = 440.0) -> bytes:
    """An mp4 whose audio decodes to planar int16 (ALAC), not AAC's planar float."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        sound = container.add_stream("alac", rate=rate, layout="stereo")
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        t = np.arange(int(seconds * rate)) / rate
        wave = np.round(0.5 * 32767 * np.sin(2 * np.pi * tone * t)).astype(np.int16)
        for begin in range(0, wave.size, 4096):
            chunk = wave[begin : begin + 4096]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="s16p", layout="stereo")
            frame.sample_rate, frame.pts = rate, begin
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    return buffer.getvalue()


def test_other_sample_formats_take_the_general_path(monkeypatch):
    calls = []
    general = audio._by_frames
    monkeypatch.setattr(audio, "_by_frames", lambda clip, window: calls.append(1) or general(clip, window))
    clip = open_clip(_alac_clip(), item_idx=1)
    assert clip.audio.codec_context.format.name != "fltp"
    window = audio.decode_audio_window(clip, 1.0, 2.0, 16_000)
    assert calls and window.valid_samples == 32_000
    # The 440 Hz tone, mono at 16 kHz (stereo to mono: sqrt(.5) of each identical
    # channel of amplitude 0.5), placed on the clip's clock: output sample n is stream
    # time (first + n) / 16 kHz. Timestamps place each resampled frame to the nearest
    # output sample, so the tone may lag or lead by up to half a sample (31 us).
    first = round((clip.info.video_start_seconds + 1.0) * 16_000)
    t = (first + np.arange(32_000)) / 16_000
    basis = np.stack([np.sin(2 * np.pi * 440 * t), np.cos(2 * np.pi * 440 * t)], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, window.samples.astype(np.float64), rcond=None)
    lag = -np.arctan2(b, a) / (2 * np.pi * 440)
    assert abs(np.hypot(a, b) - np.sqrt(0.5)) < 2e-3
    assert abs(lag) <= 0.5 / 16_000 + 1e-6
    np.testing.assert_allclose(window.samples, basis @ [a, b], atol=2e-3)
