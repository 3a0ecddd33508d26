"""`tali prepare` on the ``realworld`` split: every class of real download re-encoded, checked
against each clip's truth and against the loader on the original.

The classes: B-frames with b-pyramid, an edit-list cut, VFR, a display-rotation tag, 854
wide, 29.97 fps on 1/30000, 60 fps (capped to 30), a single 30 s GOP, VP9 + Opus, AV1, MP3,
mono 22.05 kHz, a 2 s clip, a stream starting at 1.5 s, audio before the video; round 2
(issue 23): an open GOP, tracks cut mid-GOP (with and without an edit list), a second audio
stream marked default, a 10 h timestamp offset, 25 fps, BT.709 / full-range / 10-bit colour,
fragmented and DASH mp4, a 1-frame and a 0.8 s clip, audio shorter than the video.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from tali import AudioConfig, TaliConfig, TaliTransform, VideoConfig, WindowConfig
from tali.decode.clip import open_clip
from tali.decode.index import clip_seconds
from tali.decode.video import rotation_of, to_rgb
from tali.errors import TaliDecodeError
from tali.prepare import METADATA_KEY, PrepareSettings, output_size
from tali.prepare.timeline import FPS_CAP_SLACK, loader_view
from tali.sample_data import expected_frame_code, frame_index_at, read_frame_index
from tali.sample_data.realworld import REALWORLD_VARIANTS

SETTINGS = PrepareSettings()  # what conftest prepares with
_VIDEO = "youtube_video_content"

_path = Path(__file__).parents[1] / "test_alignment.py"
_spec = importlib.util.spec_from_file_location("_tali_alignment_checks", _path)
assert _spec is not None and _spec.loader is not None
_alignment = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_alignment)


def _variant(real_truth, name: str) -> int:
    return next(i for i, t in real_truth.items() if t["variant"] == name)


def _full_decode(data: bytes) -> dict:
    """Every frame of a clip, decoded start to end by PyAV: clip seconds, the frame's display
    rotation, its code (read at full size) and which packets are keyframes."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        keys = sorted(
            float((p.pts - origin) * stream.time_base)
            for p in container.demux(stream)
            if p.pts is not None and p.is_keyframe
        )
        container.seek(0)
        pts, codes, rotations, sizes = [], [], [], set()
        for frame in container.decode(stream):
            pts.append(float((frame.pts - origin) * stream.time_base))
            codes.append(read_frame_index(to_rgb(frame, None, "bicubic")))
            rotations.append(rotation_of(frame))
            sizes.add((frame.width, frame.height))
    order = np.argsort(pts)
    return {
        "start": origin,
        "pts": np.asarray(pts)[order],
        "codes": np.asarray(codes)[order],
        "rotations": set(rotations),
        "sizes": sizes,
        "keys": np.asarray(keys),
    }


def test_every_class_is_reencoded_and_reported(original_root, prepared_real_root, real_truth):
    source = original_root / "data" / "realworld-00000-of-00001.parquet"
    output = prepared_real_root / "data" / source.name
    provenance = json.loads(pq.ParquetFile(output).metadata.metadata[METADATA_KEY])
    assert provenance["failures"] == []
    items = pq.read_table(output).column("item_idx").to_pylist()
    rotated = _variant(real_truth, "rotated90")
    assert provenance["rotated_rows"] == [{"row": items.index(rotated), "item_idx": rotated, "degrees": 90}]
    report = json.loads((prepared_real_root / "tali-prepare.json").read_text())
    assert report["summary"]["reencoded"] == len(REALWORLD_VARIANTS)
    assert report["summary"]["rotated_upright"] == 1
    a, b = pq.read_table(source), pq.read_table(output)
    for name in a.column_names:  # subtitles, the start time and every other column: unchanged
        if name not in (_VIDEO, "youtube_video_size"):
            assert b.column(name).equals(a.column(name)), name
    assert a.column(_VIDEO).to_pylist() != b.column(_VIDEO).to_pylist()


def test_timeline_frames_and_keyframes_against_the_truth(real_pairs, real_truth):
    """Per class, from a full decode of the prepared clip: stored upright at the displayed
    size, clip time 0 the first frame, every frame at a source timestamp (all of them
    up to 30 fps, every other one at 60) showing the source's frame for that time, the
    clip ending where the source does, and a keyframe at the first frame of every second
    (plus the thumbnail's, checked in the thumbnail test) and nowhere else."""
    for item_idx, (original, prepared) in real_pairs.items():
        truth = real_truth[item_idx]
        label = truth["variant"]
        got = _full_decode(prepared[_VIDEO])
        assert got["rotations"] == {0}, label
        size = output_size(truth["display_width"], truth["display_height"], SETTINGS.short_side)
        assert got["sizes"] == {size}, label
        assert got["start"] == 0 and got["pts"][0] == 0.0, label
        source = np.asarray(truth["frame_seconds"])
        if truth["fps"] <= SETTINGS.max_fps:
            np.testing.assert_allclose(got["pts"], source, atol=1e-9, err_msg=label)
        else:
            np.testing.assert_allclose(got["pts"], source[::2], atol=1e-9, err_msg=label)
        gaps = np.diff(got["pts"])
        assert gaps.size == 0 or gaps.min() >= (1 - FPS_CAP_SLACK) / SETTINGS.max_fps - 1e-9, label
        expected = [expected_frame_code(truth, frame_index_at(truth, t)) for t in got["pts"]]
        assert got["codes"].tolist() == expected, label
        with open_clip(original[_VIDEO]) as a, open_clip(prepared[_VIDEO]) as b:
            assert clip_seconds(b) == pytest.approx(clip_seconds(a), abs=1e-9), label
            length = clip_seconds(b)
        grid = {
            float(got["pts"][np.searchsorted(got["pts"], k - 1e-9)])
            for k in np.arange(0, length, SETTINGS.keyframe_seconds)
            if k <= got["pts"][-1] + 1e-9  # a second the last frame runs into has no frame start
        }
        assert grid <= set(got["keys"].tolist()), f"{label}: a second without a keyframe"
        # Elsewhere only on the thumbnail frame, and on the last one where B-frames would
        # otherwise change its duration (timeline.plan_timeline's ``key_last``).
        extra = set(got["keys"].tolist()) - grid
        allowed = {float(loader_view(prepared[_VIDEO]).thumbnail), float(got["pts"][-1])}
        assert extra <= allowed, f"{label}: keyframes {got['keys']}"


@pytest.mark.parametrize("start", ["random", "start"])
def test_samples_match_the_original_and_the_truth(real_pairs, real_truth, same_window, start):
    """The loader on both copies, same row and key: within the prepare tolerance, every
    frame code, tone and subtitle line as the truth says (the rotated clip upright in
    both: ``orientation="display"``)."""
    config = TaliConfig(
        modalities=["video", "audio", "youtube_subtitle_text"],
        window=WindowConfig(seconds=1.5, start=start),
        audio=AudioConfig(on_missing="zeros"),
    )
    transform = TaliTransform(config)
    for item_idx, (original, prepared) in real_pairs.items():
        truth = real_truth[item_idx]
        a, b = transform(original, key=item_idx), transform(prepared, key=item_idx)
        same_window(a, b, truth["variant"], same_frames=truth["fps"] <= SETTINGS.max_fps)
        assert b["youtube_subtitle_text"] == a["youtube_subtitle_text"], truth["variant"]
        video = b["youtube_content_video"]
        source = np.asarray(truth["frame_seconds"])
        for t in video["pts_seconds"][video["mask"]].tolist():  # a source frame's time (any class)
            assert np.abs(source - t).min() < 1e-9, truth["variant"]
        assert video["rotation"] == 0 and a["youtube_content_video"]["rotation"] == truth["rotation"]
        for frame, t in zip(video["frames"][video["mask"]], video["pts_seconds"][video["mask"]].tolist()):
            assert read_frame_index(frame) == expected_frame_code(truth, frame_index_at(truth, t))
        window = b["window"]
        # The helper reads the audio's end as the clip's: give it the audio's own end.
        audio_truth = dict(truth, duration_seconds=min(truth["duration_seconds"], truth["audio_end_seconds"]))
        _alignment._check_audio(
            audio_truth, b["youtube_content_audio"], window["start_seconds"], window["duration_seconds"]
        )


def test_a_rotated_clip_is_stored_upright(real_pairs, real_truth):
    """``orientation="stored"`` differs between the copies for a rotated row (the prepared
    clip is stored upright); ``display`` gives the same picture from both."""
    row, prepared = real_pairs[_variant(real_truth, "rotated90")]
    truth = real_truth[_variant(real_truth, "rotated90")]

    def frames(data_row, orientation):
        config = TaliConfig(
            modalities=["video"], video=VideoConfig(size=None, num_frames=2, orientation=orientation)
        )
        return TaliTransform(config)(data_row, key=0)["youtube_content_video"]

    upright = (truth["display_height"], truth["display_width"])
    for video in (frames(row, "display"), frames(prepared, "display"), frames(prepared, "stored")):
        assert tuple(video["frames"].shape[2:]) == upright
        for frame, t in zip(video["frames"], video["pts_seconds"].tolist()):
            assert read_frame_index(frame) == expected_frame_code(truth, frame_index_at(truth, t))
    assert tuple(frames(row, "stored")["frames"].shape[2:]) == (truth["height"], truth["width"])


@pytest.mark.parametrize("degrees", [180, 270])
def test_every_rotation_is_stored_upright(degrees, same_window):
    """The other two display rotations, on 1 s clips built here (the sample has only 90)."""
    from tali.prepare import reencode
    from tali.sample_data import RealClip, encode_real_clip

    data, truth = encode_real_clip(
        RealClip(variant=f"rotated{degrees}", rotation=degrees, duration_seconds=1.0)
    )
    result = reencode(data, SETTINGS)
    assert result.rotation == degrees
    got = _full_decode(result.data)
    assert got["rotations"] == {0}
    assert got["sizes"] == {output_size(truth["display_width"], truth["display_height"], SETTINGS.short_side)}
    expected = [expected_frame_code(truth, frame_index_at(truth, t)) for t in got["pts"]]
    assert got["codes"].tolist() == expected
    config = TaliConfig(modalities=["video"], window=WindowConfig(seconds=0.5, start="centre"))
    original = TaliTransform(config)({_VIDEO: data, "item_idx": 0}, key=0)
    prepared = TaliTransform(config)({_VIDEO: result.data, "item_idx": 0}, key=0)
    assert original["youtube_content_video"]["rotation"] == degrees
    same_window(original, prepared, degrees)


@pytest.mark.parametrize("variant", ["bt709", "full_range", "bt709_10bit"])
def test_colour_is_carried_through(variant, real_pairs, real_truth):
    """Issue 23 item 6: BT.709, full-range and 10-bit sources. The loader's RGB of the prepared
    copy shows each colour patch at its known value, as the original's does (before: up to
    50 levels off, the output untagged and read as BT.601 limited range)."""
    item_idx = _variant(real_truth, variant)
    truth = real_truth[item_idx]
    config = TaliConfig(
        modalities=["video"],
        window=WindowConfig(seconds=1.0, start=0.5),
        video=VideoConfig(num_frames=3, size=None),
    )
    transform = TaliTransform(config)
    for row in real_pairs[item_idx]:
        frames = transform(row, key=0)["youtube_content_video"]["frames"].int()
        for x, y, side, value in truth["colour_patches"]:
            patch = frames[:, :, y + 6 : y + side - 6, x + 6 : x + side - 6].float().mean(dim=(0, 2, 3))
            assert (patch - torch.tensor(value)).abs().max() < 4, (variant, value, patch.tolist())


def test_audio_is_placed_and_cut_like_the_original(real_pairs, real_truth):
    """Issue 23 items 7-8: over the whole clip, the prepared audio is the original's at zero lag
    (fragmented and DASH mp4 were 43.4 ms early) and has exactly its valid samples (very short
    clips and audio shorter than the video ran 37-740 samples past the source's end)."""
    config = TaliConfig(modalities=["audio"], window=WindowConfig(seconds=None))
    transform = TaliTransform(config)
    for item_idx, (original, prepared) in real_pairs.items():
        truth = real_truth[item_idx]
        if not truth["has_audio"]:
            continue
        a = transform(original, key=0)["youtube_content_audio"]
        b = transform(prepared, key=0)["youtube_content_audio"]
        assert a["valid_samples"] == b["valid_samples"], truth["variant"]
        end = float(truth["audio_end_seconds"]) - min(float(truth["audio_offset_seconds"]), 0.0)
        assert a["valid_samples"] <= round(end * 16_000) + 1, truth["variant"]
        wa, wb = a["waveform"].numpy().reshape(-1), b["waveform"].numpy().reshape(-1)
        if wa.size > 1600:
            zero = np.dot(wa, wb) / np.sqrt(np.dot(wa, wa) * np.dot(wb, wb))
            assert zero > 0.95, (truth["variant"], zero)


def test_the_output_check_compares_colour(real_pairs, real_truth, monkeypatch):
    """Issue 23 item 6: prepare's own output check reads colour, not only frame codes. An
    encode that drops the source's BT.709 tags (what prepare did before) fails the row,
    naming the shift."""
    from tali.prepare import encode

    original, _ = real_pairs[_variant(real_truth, "bt709")]
    data = original[_VIDEO]
    assert encode.colour_shift(data, encode.reencode(data, SETTINGS).data) < 1.0
    monkeypatch.setattr(encode._Colour, "tag", lambda self, stream: None)
    monkeypatch.setattr(encode, "_MATRIX", {})
    with pytest.raises(TaliDecodeError, match=r"colours differ from the source's by [3-9]\.\d levels"):
        encode.reencode(data, SETTINGS, item_idx=7)
