"""Every output of a sample comes from the same moment: proven against the generator's truth.

Frames are read back to their index, audio to the second its tone encodes,
subtitles to the absolute second they name, images to their item_idx.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tali import AudioConfig, TaliConfig, TaliTransform, VideoConfig, WindowConfig
from tali.sample_data import (
    CodeUnreadable,
    expected_frame_code,
    expected_subtitle_lines,
    expected_tone_second,
    frame_index_at,
    read_frame_index,
    read_image_code,
    tone_seconds,
)

SEEDS = range(4)


def _check_frame(truth: dict, pixels: torch.Tensor, pts: float) -> int:
    """The pixels show the frame displayed at ``pts``; returns its index."""
    index = round(pts * truth["fps"])
    assert abs(pts - index / truth["fps"]) < 1e-3, "pts is not on the frame grid"
    expected = expected_frame_code(truth, index)
    if expected is None:
        with pytest.raises(CodeUnreadable):
            read_frame_index(pixels)
    else:
        assert read_frame_index(pixels) == expected
    return index


def _check_audio(truth: dict, audio: dict, t0: float, d: float) -> None:
    sr = audio["sample_rate"]
    wave = audio["waveform"]
    assert wave.shape == (round(d * sr),) and wave.dtype == torch.float32
    checked = 0
    for centre, second in tone_seconds(wave, sr, t0):
        # A chunk is 0.25 s: judge by both ends, so chunks that straddle a stream edge are skipped.
        ends = {expected_tone_second(truth, centre - 0.12), expected_tone_second(truth, centre + 0.12)}
        if len(ends) != 1 or False in ends:
            continue
        (want,) = ends
        assert second == want, f"chunk at {centre:.3f}s reads second {second}, want {want}"
        checked += 1
    assert checked > 0 or d < 0.6
    audible_from = max(t0, truth["audio_offset_seconds"] - 0.03) if truth["has_audio"] else None
    if audible_from is not None:
        covered = max(0.0, min(t0 + d, truth["duration_seconds"]) - audible_from)
        assert abs(audio["valid_samples"] - covered * sr) <= 0.05 * sr


@pytest.mark.parametrize("selection", ["uniform", "random", "sequential"])
def test_every_output_comes_from_the_window(rows, truth, selection):
    config = TaliConfig(
        video=VideoConfig(num_frames=8, selection=selection),
        audio=AudioConfig(on_missing="zeros"),
        window=WindowConfig(seconds=3.0),
    )
    for item_idx, row in rows.items():
        t = truth[item_idx]
        for seed in SEEDS:
            sample = TaliTransform(config.replace(seed=seed))(row, key=item_idx, epoch=0)
            window = sample["window"]
            t0, d = window["start_seconds"], window["duration_seconds"]
            assert d == 3.0 and 0 <= t0 <= max(t["duration_seconds"] - d, 0) + 1e-9
            assert window["clip_seconds"] == pytest.approx(t["duration_seconds"])

            video = sample["youtube_content_video"]
            frames, pts, mask = video["frames"], video["pts_seconds"], video["mask"]
            assert frames.shape == (8, 3, 224, 224) and frames.dtype == torch.uint8
            assert mask.all(), "a 3 s window holds more than 8 frames"
            indices = [_check_frame(t, frames[i], float(pts[i])) for i in range(8)]
            first = math.ceil(t0 * t["fps"] - 1e-6)
            last = min(math.ceil((t0 + d) * t["fps"] - 1e-6), round(t["duration_seconds"] * t["fps"])) - 1
            assert first <= min(indices) and max(indices) <= last
            steps = np.diff(indices)
            if selection == "sequential":
                assert indices[0] == first and (steps == 1).all()
            elif selection == "uniform":
                assert indices[0] == first and indices[-1] == last
                assert steps.max() - steps.min() <= 1, "uniform frames are evenly spaced"
            else:
                assert (steps > 0).all(), "random frames are distinct and in order"

            frame = sample["youtube_random_video_frame"]
            assert t0 - 1e-6 <= frame["pts_seconds"] < t0 + d
            _check_frame(t, frame["pixels"], frame["pts_seconds"])

            audio = sample["youtube_content_audio"]
            assert audio["missing"] == (not t["has_audio"])
            _check_audio(t, audio, t0, d)

            start = float(t["start_second"])
            want = expected_subtitle_lines(t, start + t0, start + t0 + d)
            assert sample["youtube_subtitle_text"]["text"] == " ".join(want)
            assert sample["youtube_subtitle_text"]["num_lines"] == len(want)


def test_random_choices_differ_across_seeds_epochs_and_rows(rows):
    row = rows[0]
    transform = TaliTransform(TaliConfig(modalities=["video"], video=VideoConfig(selection="random")))
    starts = {
        transform(rows[i], key=0, epoch=e)["window"]["start_seconds"] for i in range(5) for e in range(3)
    }
    assert len(starts) == 15
    # The row's item_idx keys its choices, not its position in a source (tali.window.seed_key).
    assert len({transform(row, key=k)["window"]["start_seconds"] for k in range(5)}) == 1
    again = transform(row, key=3, epoch=2)
    assert again["window"]["start_seconds"] == transform(row, key=3, epoch=2)["window"]["start_seconds"]
    assert torch.equal(
        again["youtube_content_video"]["frames"],
        transform(row, key=3, epoch=2)["youtube_content_video"]["frames"],
    )


def test_adding_a_modality_does_not_change_the_other_choices(rows):
    base = TaliConfig(modalities=["video"], video=VideoConfig(selection="random"), seed=7)
    more = base.replace(modalities=("video", "youtube_random_video_frame", "text"))
    for key in range(4):
        a = TaliTransform(base)(rows[1], key=key)
        b = TaliTransform(more)(rows[1], key=key)
        assert a["window"] == b["window"]
        assert torch.equal(
            a["youtube_content_video"]["pts_seconds"], b["youtube_content_video"]["pts_seconds"]
        )


@pytest.mark.parametrize(
    # 29.5 s leaves no room for 3 s: clamped so the window ends at the clip's end (a start
    # past nominal_clip_seconds is refused at construction: tests/test_config_values.py).
    "start, expected_t0",
    [("start", 0.0), ("centre", 13.5), (5.25, 5.25), (29.5, 27.0)],
)
def test_fixed_window_starts(rows, start, expected_t0):
    config = TaliConfig(modalities=["audio", "video"], window=WindowConfig(seconds=3.0, start=start))
    sample = TaliTransform(config)(rows[0], key=0)
    assert sample["window"]["start_seconds"] == pytest.approx(expected_t0)


def test_whole_clip_window_spans_the_clip(rows, truth):
    config = TaliConfig(
        modalities=["video", "audio"], window=WindowConfig(seconds=None), video=VideoConfig(num_frames=8)
    )
    for item_idx in (0, 1, 8):
        t = truth[item_idx]
        sample = TaliTransform(config)(rows[item_idx], key=0)
        assert sample["window"]["start_seconds"] == 0
        assert sample["window"]["duration_seconds"] == pytest.approx(t["duration_seconds"])
        pts = sample["youtube_content_video"]["pts_seconds"]
        total = round(t["duration_seconds"] * t["fps"])
        assert round(float(pts[0]) * t["fps"]) == 0 and round(float(pts[-1]) * t["fps"]) == total - 1
        _check_audio(t, sample["youtube_content_audio"], 0.0, t["duration_seconds"])


def test_window_longer_than_the_clip_pads_frames_and_audio(rows, truth):
    short = next(i for i, t in truth.items() if t["variant"] == "short_clip")
    t = truth[short]
    config = TaliConfig(
        modalities=["video", "audio"],
        window=WindowConfig(seconds=20.0),
        video=VideoConfig(num_frames=32, selection="sequential", size=112),
    )
    sample = TaliTransform(config)(rows[short], key=0)
    assert sample["window"]["start_seconds"] == 0 and sample["window"]["duration_seconds"] == 20.0
    audio = sample["youtube_content_audio"]
    assert audio["waveform"].shape == (320_000,)
    assert audio["valid_samples"] == pytest.approx(t["duration_seconds"] * 16_000, abs=800)
    assert float(audio["waveform"][200_000:].abs().max()) == 0.0
    # 32 sequential frames of a 12 s clip are all real; now a sparse clip end:
    config = config.replace(
        window=WindowConfig(seconds=0.05, start=29.0), video=VideoConfig(num_frames=8, size=112)
    )
    video = TaliTransform(config)(rows[short], key=0)["youtube_content_video"]
    mask = video["mask"]
    assert mask.tolist() == [True] + [False] * 7
    assert torch.equal(video["frames"][7], video["frames"][0]), "padding repeats the last real frame"
    assert read_frame_index(video["frames"][7]) == round(t["duration_seconds"] * t["fps"]) - 1


def test_keyframes_only_returns_keyframes_inside_the_window(rows, truth):
    config = TaliConfig(
        modalities=["video"],
        video=VideoConfig(keyframes_only=True, num_frames=4),
        window=WindowConfig(seconds=7.0),
    )
    for item_idx in (0, 6):  # GOP 2 s and GOP 10 s
        t = truth[item_idx]
        for key in range(3):
            sample = TaliTransform(config)(rows[item_idx], key=key)
            t0 = sample["window"]["start_seconds"]
            video = sample["youtube_content_video"]
            real = video["mask"].nonzero().flatten().tolist()
            for i in real:
                pts = float(video["pts_seconds"][i])
                assert abs(pts / t["gop_seconds"] - round(pts / t["gop_seconds"])) < 1e-6, "a keyframe time"
                _check_frame(t, video["frames"][i], pts)
            gop = t["gop_seconds"]
            inside = [
                k * gop for k in range(int(t["duration_seconds"] / gop) + 1) if t0 <= k * gop < t0 + 7.0
            ]
            if inside:
                assert [float(video["pts_seconds"][i]) for i in real] == pytest.approx(inside[:4])
            else:  # no keyframe in the window: the one in force at its start, as padding
                assert not real, "a keyframe outside the window is not a frame of it"
                in_force = round(math.floor(t0 / gop) * gop * t["fps"])
                assert read_frame_index(video["frames"][0]) == in_force


def test_thumbnail_is_the_middle_frame_unless_a_column_has_one(rows, truth):
    config = TaliConfig(modalities=["youtube_thumbnail_image"])
    for item_idx in (0, 1, 8):
        t = truth[item_idx]
        thumb = TaliTransform(config)(rows[item_idx], key=5, epoch=3)["youtube_thumbnail_image"]
        middle = frame_index_at(t, t["duration_seconds"] / 2)
        assert read_frame_index(thumb["pixels"]) == expected_frame_code(t, middle)
        assert thumb["pts_seconds"] == pytest.approx(middle / t["fps"])
    from tali.sample_data.generate import _image_bytes

    row = dict(
        rows[0], youtube_thumbnail={"bytes": _image_bytes(4000, ("RGB", "JPEG", (480, 360))), "path": None}
    )
    thumb = TaliTransform(config)(row, key=0)["youtube_thumbnail_image"]
    assert read_image_code(thumb["pixels"]) == 4000 and math.isnan(thumb["pts_seconds"])


@pytest.mark.parametrize("size", [112, 224, 336, None])
def test_output_sizes_and_formats(rows, truth, size):
    config = TaliConfig(
        modalities=["video", "wikipedia_caption_image"],
        video=VideoConfig(num_frames=2, size=size, output="float"),
        image=__import__("tali").ImageConfig(size=size),
    )
    sample = TaliTransform(config)(rows[2], key=0)  # the 1280x720 clip
    frames = sample["youtube_content_video"]["frames"]
    expect = (2, 3, size, size) if size else (2, 3, 720, 1280)
    assert (
        frames.shape == expect
        and frames.dtype == torch.float32
        and 0 <= float(frames.min()) <= float(frames.max()) <= 1
    )
    assert read_frame_index(frames[0]) == round(float(sample["youtube_content_video"]["pts_seconds"][0]) * 30)
    image = sample["wikipedia_caption_image"]["pixels"]
    assert image.shape[0] == 3 and (size is None or image.shape[1:] == (size, size))
    pil = TaliTransform(config.replace(video=VideoConfig(num_frames=2, output="pil")))(rows[2], key=0)
    assert len(pil["youtube_content_video"]["frames"]) == 2 and pil["youtube_content_video"]["frames"][
        0
    ].size == (224, 224)


def test_every_image_mode_comes_out_rgb_with_its_code(rows, truth):
    transform = TaliTransform(TaliConfig(modalities=["wikipedia_caption_image"]))
    modes = set()
    for item_idx, row in rows.items():
        pixels = transform(row, key=0)["wikipedia_caption_image"]["pixels"]
        assert pixels.shape == (3, 224, 224) and pixels.dtype == torch.uint8
        assert read_image_code(pixels) == item_idx
        modes.add(truth[item_idx]["image_mode"])
    assert modes == {"RGB", "RGBA", "L", "I;16", "P", "CMYK", "LA"}


def test_sixteen_bit_grey_is_scaled_not_clipped(rows, truth):
    item = next(i for i, t in truth.items() if t["image_mode"] == "I;16")
    pixels = TaliTransform(TaliConfig(modalities=["wikipedia_caption_image"]))(rows[item], key=0)
    values = pixels["wikipedia_caption_image"]["pixels"]
    # White code cells are 235 * 257 in 16 bits: scaled they read ~235; clipped they would read 255.
    assert float(values[values > 128].float().median()) == pytest.approx(235, abs=3)
