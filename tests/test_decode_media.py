"""Real-world media (the sample dataset's ``realworld`` split): every variant, every selection
mode, keyframes only and source resolution, checked against each clip's recorded truth and an
independent full decode.

The truth of a frame is its code (``read_frame_index``) and its timestamp; a frame reported real
(``mask=True``) must be a frame the window holds, show the code of the frame shown at its
``pts_seconds``, and carry exactly the timestamp a full decode gives it.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest

from tali import TaliConfig
from tali.config import VideoConfig, WindowConfig
from tali.decode.clip import open_clip
from tali.decode.index import clip_end_ticks, clip_seconds, keyframe_seconds
from tali.sample_data import expected_frame_code, frame_index_at, read_frame_index
from tali.sample_data.realworld import REALWORLD_VARIANTS
from tali.transform import TaliTransform

VIDEO = ("youtube_content_video",)


@pytest.fixture(scope="session")
def by_variant(real_rows, truth) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {truth[i]["variant"]: (row, truth[i]) for i, row in real_rows.items()}


@pytest.fixture(scope="session")
def full_decode(by_variant) -> dict[str, dict[str, Any]]:
    """Every frame of every variant decoded start to end by PyAV: display-order pts (clip
    seconds) and which ones the decoder calls keyframes (the independent reference)."""
    out = {}
    for name, (row, _) in by_variant.items():
        with av.open(io.BytesIO(row["youtube_video_content"])) as container:
            stream = container.streams.video[0]
            decoded = [(frame.pts, bool(frame.key_frame)) for frame in container.decode(stream)]
            # Clip time 0 is the first frame the decoder shows: the stream start, or the first
            # keyframe of a track cut mid-GOP (FFmpeg drops the frames before it).
            origin = min(p for p, _ in decoded)
            pts = [float((p - origin) * stream.time_base) for p, _ in decoded]
            keys = [k for _, k in decoded]
        order = np.argsort(pts)
        out[name] = {"pts": np.asarray(pts)[order], "key": np.asarray(keys)[order]}
    return out


def test_every_class_is_in_the_sample(by_variant):
    assert sorted(by_variant) == sorted(v.variant for v in REALWORLD_VARIANTS)


def _check_frames(sample, truth, ref, config: TaliConfig, label: str) -> dict[str, Any]:
    video = sample["youtube_content_video"]
    window = sample["window"]
    frames, pts, mask = video["frames"], video["pts_seconds"].numpy(), video["mask"].numpy()
    start, end = window["start_seconds"], window["start_seconds"] + window["duration_seconds"]
    real_pts = ref["pts"]
    in_window = real_pts[(real_pts >= start - 1e-9) & (real_pts < end - 1e-9)]
    if config.video.keyframes_only:
        in_window = real_pts[ref["key"] & (real_pts >= start - 1e-9) & (real_pts < end - 1e-9)]
    # A window without a frame start keeps the frame on screen at its start (real); one
    # without a keyframe shows the keyframe in force as padding (not a frame of it).
    least = 0 if config.video.keyframes_only else 1
    assert mask.sum() == min(config.video.num_frames, max(in_window.size, least)), label
    for slot in np.flatnonzero(mask):
        t = pts[slot]
        # Exactly a real frame's timestamp (full decode), inside the window.
        nearest = np.abs(real_pts - t).min()
        assert nearest < 1e-9, f"{label}: slot {slot} at {t} is not a frame timestamp"
        if in_window.size:
            assert start - 1e-9 <= t < end, f"{label}: slot {slot} at {t} outside [{start}, {end})"
        code = read_frame_index(frames[slot])
        assert code == expected_frame_code(truth, frame_index_at(truth, t)), f"{label}: slot {slot}"
        if config.video.keyframes_only:
            assert ref["key"][np.argmin(np.abs(real_pts - t))], f"{label}: slot {slot} is not a keyframe"
    real = pts[mask]
    assert np.all(np.diff(real) > 0), f"{label}: real frames repeat or go back: {real}"
    if config.video.selection == "sequential" and not config.video.keyframes_only:
        first = np.searchsorted(in_window, real[0] - 1e-9)
        np.testing.assert_allclose(real, in_window[first : first + real.size], atol=1e-9, err_msg=label)
    return video


@pytest.mark.parametrize("variant", [v.variant for v in REALWORLD_VARIANTS])
def test_frames_are_the_real_frames_of_the_window(variant, by_variant, full_decode):
    row, truth = by_variant[variant]
    ref = full_decode[variant]
    modes = [
        ("uniform", False, WindowConfig(seconds=None)),
        ("uniform", False, WindowConfig(seconds=1.5, start="random")),
        ("random", False, WindowConfig(seconds=2.0, start="random")),
        ("sequential", False, WindowConfig(seconds=3.0, start="centre")),
        ("uniform", True, WindowConfig(seconds=None)),
        ("random", True, WindowConfig(seconds=4.0, start="random")),
    ]
    for key, (selection, keyframes_only, window) in enumerate(modes):
        config = TaliConfig(
            modalities=VIDEO + ("youtube_random_video_frame",),
            window=window,
            video=VideoConfig(num_frames=8, selection=selection, keyframes_only=keyframes_only, size=64),
            image=TaliConfig().image.__class__(size=64),
            seed=3,
        )
        sample = TaliTransform(config)(row, key=key)
        label = f"{variant} {selection} keyframes_only={keyframes_only} {window}"
        _check_frames(sample, truth, ref, config, label)
        single = sample["youtube_random_video_frame"]
        t = single["pts_seconds"]
        assert np.abs(ref["pts"] - t).min() < 1e-9, label
        assert read_frame_index(single["pixels"]) == expected_frame_code(truth, frame_index_at(truth, t))


@pytest.mark.parametrize("variant", [v.variant for v in REALWORLD_VARIANTS])
def test_whole_clip_ends_where_the_last_frame_ends(variant, by_variant, full_decode):
    row, truth = by_variant[variant]
    with open_clip(row["youtube_video_content"]) as clip:
        length = clip_seconds(clip)
    assert length == pytest.approx(truth["duration_seconds"], abs=2e-3)
    # Uniform over the whole clip keeps its last frame (a header running past it lost a slot).
    config = TaliConfig(modalities=VIDEO, window=WindowConfig(seconds=None), video=VideoConfig(size=32))
    video = TaliTransform(config)(row, key=0)["youtube_content_video"]
    assert video["mask"].sum() == min(8, full_decode[variant]["pts"].size)  # a 1-frame clip: 1
    assert video["pts_seconds"][-1].item() == pytest.approx(full_decode[variant]["pts"][-1], abs=1e-9)


def test_keyframe_index_matches_the_decoder(by_variant, full_decode):
    for name, (row, _) in by_variant.items():
        with open_clip(row["youtube_video_content"]) as clip:
            keys = keyframe_seconds(clip)
        ref = full_decode[name]
        np.testing.assert_allclose(keys, ref["pts"][ref["key"]], atol=1e-9, err_msg=name)


def test_thumbnail_is_the_frame_shown_at_the_exact_middle(by_variant, full_decode):
    """29.97 fps on a 1/30000 time base puts frame starts on exact middles; ticks decide."""
    config = TaliConfig(modalities=("youtube_thumbnail_image",), image=TaliConfig().image.__class__(size=64))
    for name, (row, truth) in by_variant.items():
        thumb = TaliTransform(config)(row, key=0)["youtube_thumbnail_image"]
        with open_clip(row["youtube_video_content"]) as clip:
            origin = clip.info.video_origin_ticks  # the first decodable frame
            middle = Fraction(clip_end_ticks(clip) - origin, 2) * clip.video.time_base
        ref = full_decode[name]["pts"]
        expected = ref[ref <= float(middle) + 1e-12].max()  # float(ticks) may round up past it
        assert thumb["pts_seconds"] == pytest.approx(expected, abs=1e-9), name
        assert read_frame_index(thumb["pixels"]) == expected_frame_code(
            truth, frame_index_at(truth, expected)
        )


def _padded_reference(frame: av.VideoFrame) -> np.ndarray:
    """gbrp of the frame padded to a multiple of 32 columns (edge repeated), cropped back:
    a conversion that never takes the narrow-width path."""
    h, w = frame.height, frame.width
    wide = (w + 31) // 32 * 32
    planes = []
    for index, (ph, pw) in enumerate(((h, w), (h // 2, (w + 1) // 2), (h // 2, (w + 1) // 2))):
        plane = frame.planes[index]
        src = np.frombuffer(plane, np.uint8).reshape(ph, plane.line_size)[:, :pw]
        cols = wide if index == 0 else wide // 2
        planes.append(np.concatenate([src, np.repeat(src[:, -1:], cols - pw, axis=1)], axis=1))
    big = av.VideoFrame(wide, h, "yuv420p")
    for plane, values in zip(big.planes, planes):
        view = np.frombuffer(plane, np.uint8).reshape(values.shape[0], plane.line_size)
        view = np.ndarray(view.shape, np.uint8, buffer=plane)
        view[:, : values.shape[1]] = values
    out = big.reformat(format="gbrp")
    rgb = [
        np.frombuffer(out.planes[i], np.uint8).reshape(h, out.planes[i].line_size)[:, :w] for i in (2, 0, 1)
    ]
    return np.stack(rgb)


@pytest.mark.parametrize("width", [854, 360, 642, 646, 640])
def test_source_resolution_is_right_in_every_column(width):
    from tali.decode.video import to_rgb

    rng = np.random.default_rng(width)
    picture = (np.linspace(0, 255, width)[None, :, None] + rng.integers(0, 40, (120, width, 3))).clip(0, 255)
    frame = av.VideoFrame.from_ndarray(picture.astype(np.uint8), format="rgb24").reformat(format="yuv420p")
    out = to_rgb(frame, None, "bicubic")
    ref = _padded_reference(frame)
    assert out.shape == (3, 120, width)
    np.testing.assert_array_equal(out, ref)
    assert out[:, :, -8:].mean() > 100  # the bright right edge is there, not black


def test_size_none_frames_on_854_wide(by_variant):
    row, _truth = by_variant["wide854"]
    config = TaliConfig(
        modalities=VIDEO + ("youtube_random_video_frame", "youtube_thumbnail_image"),
        video=VideoConfig(size=None, num_frames=4),
        image=TaliConfig().image.__class__(size=None),
    )
    sample = TaliTransform(config)(row, key=1)
    frames = sample["youtube_content_video"]["frames"]
    assert tuple(frames.shape) == (4, 3, 480, 854)
    for pixels in (
        *frames,
        sample["youtube_random_video_frame"]["pixels"],
        sample["youtube_thumbnail_image"]["pixels"],
    ):
        right = pixels[:, :, -8:].float().mean().item()
        left = pixels[:, :, 8:16].float().mean().item()
        assert right > 0.5 * left, "the last columns are black"


def test_rotation_upright_by_default_and_stored_on_request(by_variant):
    row, truth = by_variant["rotated90"]
    upright = TaliTransform(TaliConfig(modalities=VIDEO, video=VideoConfig(size=None, num_frames=2)))(
        row, key=0
    )
    video = upright["youtube_content_video"]
    assert video["rotation"] == 90
    assert tuple(video["frames"].shape[2:]) == (truth["display_height"], truth["display_width"])
    for frame, t in zip(video["frames"], video["pts_seconds"].tolist()):
        assert read_frame_index(frame) == expected_frame_code(truth, frame_index_at(truth, t))
    stored_cfg = TaliConfig(
        modalities=VIDEO, video=VideoConfig(size=None, num_frames=2, orientation="stored")
    )
    stored = TaliTransform(stored_cfg)(row, key=0)["youtube_content_video"]
    assert stored["rotation"] == 0
    assert tuple(stored["frames"].shape[2:]) == (truth["height"], truth["width"])
    np.testing.assert_array_equal(np.rot90(stored["frames"].numpy(), 1, axes=(2, 3)), video["frames"].numpy())


def test_a_window_shorter_than_a_frame_holds_the_frame_on_screen(by_variant, full_decode):
    """No frame starts in a 5 ms window inside a 33 ms frame: the window holds the frame
    shown during it (not the next one, which starts after the window)."""
    for name in ("vfr", "ntsc2997", "x264_bpyramid"):
        row, truth = by_variant[name]
        ref = full_decode[name]["pts"]
        start = float(ref[40] + (ref[41] - ref[40]) / 3)
        config = TaliConfig(
            modalities=VIDEO,
            window=WindowConfig(seconds=0.005, start=start),
            video=VideoConfig(num_frames=2, size=64),
        )
        video = TaliTransform(config)(row, key=0)["youtube_content_video"]
        assert video["mask"].tolist() == [True, False]
        assert video["pts_seconds"][0].item() == pytest.approx(ref[40], abs=1e-9)
        assert read_frame_index(video["frames"][0]) == expected_frame_code(
            truth, frame_index_at(truth, ref[40])
        )
