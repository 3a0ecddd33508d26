"""The audio window's fast path (numpy downmix, one resampler call per gapless run)
gives the samples swresample gives frame by frame, on every clip it applies to."""

from __future__ import annotations

import numpy as np
import pytest

from tali.decode import audio
from tali.decode.clip import open_clip


@pytest.mark.parametrize(("start", "seconds", "rate"), [(0.0, 3.0, 16_000), (7.3, 10.0, 22_050), (27.5, 3.0, 16_000)])
def test_fast_path_equals_swresample_frame_by_frame(rows, truth, start, seconds, rate):
    checked = 0
    for item, row in rows.items():
        # A fresh clip for each path: a clip decoded once and sought back to 0 starts
        # its AAC decoder from other state (the first ~13 ms differ), on either path.
        clips = [open_clip(row["youtube_video_content"], item_idx=item) for _ in range(2)]
        if clips[0].audio is None or clips[0].audio.codec_context.layout.name not in audio._DOWNMIX:
            continue
        fast, general = (audio._Window(c, start, seconds, rate) for c in clips)
        audio._by_runs(clips[0], fast)
        audio._by_frames(clips[1], general)
        assert (fast.filled.sum() > 0) == (truth[item]["duration_seconds"] > start)
        np.testing.assert_array_equal(fast.filled, general.filled)
        np.testing.assert_allclose(fast.out, general.out, atol=1e-6, rtol=0)
        checked += 1
    layouts = {truth[i]["audio_layout"] for i in rows if truth[i]["has_audio"]}
    assert {"mono", "stereo"} <= layouts and checked >= 10


def test_other_layouts_take_the_general_path(rows, truth):
    item = next(i for i, t in truth.items() if t["has_audio"] and t["audio_layout"] == "5.1")
    clip = open_clip(rows[item]["youtube_video_content"], item_idx=item)
    assert clip.audio.codec_context.layout.name not in audio._DOWNMIX
    window = audio.decode_audio_window(clip, 2.0, 3.0, 16_000)
    assert window.valid_samples == 48_000 and np.abs(window.samples).max() > 0.01
