"""Opt-in decoder shortcuts: applied (the pixels change), small (stated bound), aligned (codes read)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tali import AudioConfig, TaliConfig, TaliTransform, VideoConfig, WindowConfig
from tali.errors import TaliConfigError
from tali.sample_data import read_frame_index
from tali.window import choose_window


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


def test_keyframe_windows_start_on_a_keyframe_with_a_full_window_after_it(rows, truth):
    config = TaliConfig(
        modalities=["video", "audio"],
        window=WindowConfig(seconds=3.0, start="keyframe"),
        video=VideoConfig(num_frames=4, selection="sequential"),
        audio=AudioConfig(on_missing="zeros"),
    )
    transform = TaliTransform(config)
    for item_idx in (0, 1, 6, 8):  # GOP 2 s at 30 and 25 fps, GOP 10 s, a 12 s clip
        t = truth[item_idx]
        gop, duration = t["gop_seconds"], t["duration_seconds"]
        starts = set()
        for epoch in range(12):  # the seed key is the row's item_idx: new epochs draw anew
            sample = transform(rows[item_idx], key=0, epoch=epoch)
            t0 = sample["window"]["start_seconds"]
            assert abs(t0 / gop - round(t0 / gop)) < 1e-6 and t0 + 3.0 <= duration + 1e-9
            video = sample["youtube_content_video"]
            assert float(video["pts_seconds"][0]) == pytest.approx(t0), "the window opens on its keyframe"
            assert read_frame_index(video["frames"][0]) == round(t0 * t["fps"])
            starts.add(t0)
        assert len(starts) >= 2, "keyframe starts are drawn, not fixed"
    # A window as long as the clip: only the first frame has a full window after it.
    whole = TaliTransform(config.replace(window=WindowConfig(seconds=30.0, start="keyframe")))
    assert whole(rows[0], key=3)["window"]["start_seconds"] == 0.0


def test_keyframe_start_is_pure_and_falls_back_to_the_first_frame():
    rng = np.random.default_rng(0)
    config = WindowConfig(seconds=3.0, start="keyframe")
    assert choose_window(config, 30.0, rng, np.array([0.0, 2.0, 28.0])).start_seconds in (0.0, 2.0)
    assert choose_window(config, 30.0, rng, np.array([28.5])).start_seconds == 0.0
    with pytest.raises(TaliConfigError, match="start='first_keyframe' is not allowed"):
        WindowConfig(start="first_keyframe")


def test_keyframe_thumbnail_is_the_keyframe_in_force_at_the_middle(rows, truth):
    middle = TaliTransform(TaliConfig(modalities=["youtube_thumbnail_image"]))
    keyed = TaliTransform(
        TaliConfig(modalities=["youtube_thumbnail_image"], video=VideoConfig(thumbnail="keyframe"))
    )
    moved = 0
    for item_idx in (0, 1, 6, 8):  # GOP 2 s at 30 and 25 fps, GOP 10 s, a 12 s clip (middle on a keyframe)
        t = truth[item_idx]
        fps, gop = t["fps"], t["gop_seconds"]
        mid_frame = round(t["duration_seconds"] / 2 * fps)
        key_frame = round((mid_frame / fps // gop) * gop * fps)
        exact = middle(rows[item_idx], key=1)["youtube_thumbnail_image"]
        fast = keyed(rows[item_idx], key=1)["youtube_thumbnail_image"]
        assert read_frame_index(exact["pixels"]) == mid_frame
        assert read_frame_index(fast["pixels"]) == key_frame
        assert fast["pts_seconds"] == pytest.approx(key_frame / fps)
        if key_frame == mid_frame:
            assert torch.equal(fast["pixels"], exact["pixels"]), "a keyframe at the middle: the same frame"
        moved += key_frame != mid_frame
        # The same for every epoch and key, as the exact thumbnail is.
        assert torch.equal(
            keyed(rows[item_idx], key=7, epoch=2)["youtube_thumbnail_image"]["pixels"], fast["pixels"]
        )
    assert moved == 3


def test_thumbnail_mode_is_checked():
    with pytest.raises(TaliConfigError, match="thumbnail"):
        VideoConfig(thumbnail="first")
