"""Non-reference H.264 packets of unwanted frames are left out: the same pixels, fewer packets.

Ground truth twice over: the pixels equal a decode fed every packet (so nothing
skipped was a reference), and the frame codes say which moment each slot shows.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from tali import TaliConfig, TaliTransform, VideoConfig
from tali.decode.clip import open_clip
from tali.decode.h264 import is_nonreference, nal_length_size
from tali.decode.index import frames_between
from tali.decode.video import decode_frames_at
from tali.prepare import PrepareSettings, reencode_clip
from tali.sample_data import read_frame_index


@pytest.fixture(scope="module")
def prepared_clips(rows) -> dict[int, bytes]:
    """Two sample clips re-encoded with prepare's defaults (3 non-reference B-frames a run)."""
    return {i: reencode_clip(rows[i]["youtube_video_content"], PrepareSettings()) for i in (0, 1)}


def _both_ways(data: bytes, t0: float, seconds: float, count: int, seed: int):
    rng = np.random.default_rng(seed)
    with open_clip(data) as clip:
        frames = frames_between(clip, t0, t0 + seconds)
        candidates = frames.in_window(t0, t0 + seconds)
        picked = rng.choice(candidates, min(count, candidates.size), replace=False)
        skipping = decode_frames_at(clip, frames, picked, size=64)
    with open_clip(data) as clip:
        frames = frames_between(clip, t0, t0 + seconds)
        everything = decode_frames_at(clip, frames, picked, size=64, skip_nonreference=False)
    return frames, picked, skipping, everything


def test_prepared_clips_skip_most_packets_and_decode_the_same_pixels(prepared_clips, truth):
    skipped = decoded = 0
    for item_idx, data in prepared_clips.items():
        fps = truth[item_idx]["fps"]
        for seed in range(6):
            t0 = float(np.random.default_rng(seed).uniform(0, 26))
            frames, picked, a, b = _both_ways(data, t0, 3.0, 8, seed)
            assert np.array_equal(a.pixels, b.pixels) and np.array_equal(a.found, b.found)
            assert np.array_equal(a.pts_seconds, b.pts_seconds, equal_nan=True)
            assert a.found.all()
            for slot, index in enumerate(picked):
                expected = round(float(frames.clip_seconds(np.array([index]))[0]) * fps)
                assert read_frame_index(a.pixels[slot]) == expected
            assert a.decoded_packets + a.skipped_packets == b.decoded_packets
            skipped, decoded = skipped + a.skipped_packets, decoded + a.decoded_packets
    # 3 of every 4 frames are non-reference B-frames; 8 of a window's ~90 are wanted.
    assert skipped > decoded, (skipped, decoded)


def test_every_sample_and_realworld_h264_clip_decodes_the_same_with_skipping(rows, real_rows):
    clips = {i: rows[i] for i in (0, 1, 2)} | real_rows
    covered = 0
    for item_idx, row in clips.items():
        data = row["youtube_video_content"]
        with open_clip(data) as clip:
            length_size = nal_length_size(clip.video)
            codec = clip.video.codec_context.name
            seconds = clip.info.duration_seconds
        if length_size is None:
            assert codec != "h264", item_idx  # every H.264 variant here is length-prefixed
            continue
        window = min(3.0, seconds)
        for seed in range(3):
            t0 = float(np.random.default_rng(seed).uniform(0, max(seconds - window, 0.0)))
            _, _, a, b = _both_ways(data, t0, window, 8, seed)
            assert np.array_equal(a.pixels, b.pixels), (item_idx, seed)
            assert np.array_equal(a.found, b.found), (item_idx, seed)
            covered += a.skipped_packets
    assert covered > 0, "the B-frame variants have non-reference frames to skip"


def test_the_loaders_default_output_is_unchanged_by_skipping(prepared_clips, rows):
    transform = TaliTransform(TaliConfig(modalities=["youtube_content_video"], video=VideoConfig(size=96)))
    for item_idx, data in prepared_clips.items():
        row = dict(rows[item_idx], youtube_video_content=data)
        sample = transform(row, key=item_idx)
        with open_clip(data) as clip:
            t0 = sample["window"]["start_seconds"]
            frames = frames_between(clip, t0, t0 + sample["window"]["duration_seconds"])
            pts = sample["youtube_content_video"]["pts_seconds"].numpy()
            wanted = [int(np.flatnonzero(np.isclose(frames.clip_seconds(), p))[0]) for p in pts]
            reference = decode_frames_at(clip, frames, wanted, size=96, skip_nonreference=False)
        assert np.array_equal(sample["youtube_content_video"]["frames"].numpy(), reference.pixels)


def test_only_length_prefixed_h264_is_read(rows, real_rows):
    vp9 = next(r for r in real_rows.values() if r["item_idx"] == 32)
    with open_clip(vp9["youtube_video_content"]) as clip:
        assert nal_length_size(clip.video) is None
    with open_clip(rows[0]["youtube_video_content"]) as clip:
        assert nal_length_size(clip.video) == 4


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x00\x00\x00\x02\x01\x9e", True),  # one non-IDR slice, nal_ref_idc 0
        (b"\x00\x00\x00\x02\x21\x9e", False),  # the same slice as a reference (nal_ref_idc 1)
        (b"\x00\x00\x00\x02\x06\x05\x00\x00\x00\x02\x01\x9e", True),  # SEI + non-reference slice
        (b"\x00\x00\x00\x02\x07\x64\x00\x00\x00\x02\x01\x9e", False),  # an SPS rides along
        (b"\x00\x00\x00\x02\x06\x05", False),  # no slice at all
        (b"\x00\x00\x00\x09\x01\x9e", False),  # length past the packet's end
        (b"\x00\x00\x00\x00\x01\x9e", False),  # a zero-length NAL unit
        (b"\x00\x00\x00", False),  # a truncated length prefix
        (b"\x00\x00\x00\x02\x81\x9e", False),  # forbidden_zero_bit set
    ],
)
def test_a_packet_counts_as_non_reference_only_when_it_parses_exactly(payload, expected):
    assert is_nonreference(av.Packet(payload), 4) is expected
