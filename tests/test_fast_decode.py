"""Opt-in decoder shortcuts: applied (the pixels change), small (stated bound), aligned (codes read)."""

from __future__ import annotations

import pytest

from tali import TaliConfig, TaliTransform, VideoConfig
from tali.errors import TaliConfigError
from tali.sample_data import read_frame_index


def test_skip_loop_filter_changes_pixels_a_little_and_keeps_every_frame(rows):
    exact = TaliTransform(TaliConfig(modalities=["video"]))
    fast = TaliTransform(TaliConfig(modalities=["video"], video=VideoConfig(skip_loop_filter=True)))
    means = []
    for item_idx in (0, 1, 2):  # 30 fps, 25 fps, 720p
        a = exact(rows[item_idx], key=item_idx)["youtube_content_video"]
        b = fast(rows[item_idx], key=item_idx)["youtube_content_video"]
        assert a["pts_seconds"].tolist() == b["pts_seconds"].tolist()
        for i in range(len(a["frames"])):
            assert read_frame_index(b["frames"][i]) == read_frame_index(a["frames"][i])
        diff = (a["frames"].int() - b["frames"].int()).abs().float()
        means.append(float(diff.mean()))
        assert float(diff.flatten().quantile(0.99)) <= 16
    assert max(means) <= 2.0, means
    assert max(means) > 0, "the option reached the decoder (deblocking skipped changes pixels)"


def test_skip_loop_filter_is_a_bool():
    with pytest.raises(TaliConfigError, match="skip_loop_filter"):
        VideoConfig(skip_loop_filter="yes")
