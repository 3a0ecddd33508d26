"""The video decoder decodes only the GOPs that show a wanted time, and still returns
the exact frame shown at each time (read back from the pixels, against the truth)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tali.decode.clip import open_clip
from tali.decode.video import decode_frames_played_at
from tali.sample_data import expected_frame_code, frame_index_at, frames_to_decode, read_frame_index


def items_with(truth: dict, **conditions) -> list[int]:
    return [
        i
        for i, t in truth.items()
        if not t.get("realworld") and all(t.get(k) == v for k, v in conditions.items())
    ]


@pytest.mark.parametrize(
    ("start", "seconds", "count"),
    [(0.0, 30.0, 8), (1.0, 10.0, 5), (3.3, 3.0, 8), (12.0, 0.5, 3), (29.5, 0.4, 2)],
)
def test_frames_are_exact_and_only_needed_gops_are_decoded(rows, truth, start, seconds, count):
    item_ids = items_with(truth, duration_seconds=30.0, black_seconds=None, frozen_seconds=None)
    assert item_ids, "the sample data has full-length clips"
    for item in item_ids:
        t = truth[item]
        times = np.linspace(start, start + seconds, count, endpoint=False) + 0.4 / t["fps"]  # off frame edges
        clip = open_clip(rows[item]["youtube_video_content"], item_idx=item)
        out = decode_frames_played_at(clip, times, size=224)
        indices = [frame_index_at(t, s) for s in times]
        assert out.found.all()
        assert [round(p * t["fps"]) for p in out.pts_seconds] == indices
        assert [read_frame_index(px) for px in out.pixels] == [expected_frame_code(t, i) for i in indices]
        # A run of needed frames ends at the first packet that starts after its last
        # wanted time (it settles that time, or B-frames shown before it reference it).
        needed, runs = frames_to_decode(t, indices)
        assert len(needed) <= out.decoded_packets <= len(needed) + runs, (
            item,
            out.decoded_packets,
            len(needed),
        )


def test_whole_clip_decodes_a_fraction_of_the_frames(rows, truth):
    item = items_with(truth, variant="standard")[0]
    t = truth[item]
    times = [k * 30.0 / 8 + 0.01 for k in range(8)]
    out = decode_frames_played_at(
        open_clip(rows[item]["youtube_video_content"], item_idx=item), times, size=112
    )
    total = round(t["duration_seconds"] * t["fps"])
    # 8 frames 3.75 s apart with a keyframe every 2 s: ~1 s of GOP per frame, not the whole clip.
    assert out.decoded_packets <= math.ceil(8 * (t["gop_seconds"] * t["fps"] + 1))
    assert out.decoded_packets < total / 2


def test_unordered_and_repeated_times_keep_their_slots(rows, truth):
    item = items_with(truth, gop_seconds=10.0)[0]
    t = truth[item]
    times = [25.0, 1.0, 25.0, 11.0, 0.0]
    out = decode_frames_played_at(
        open_clip(rows[item]["youtube_video_content"], item_idx=item), times, size=112
    )
    assert [read_frame_index(px) for px in out.pixels] == [
        expected_frame_code(t, frame_index_at(t, s)) for s in times
    ]
    # Long GOPs: everything up to 25 s is one run of GOPs 0-2, nothing after it.
    assert out.decoded_packets <= frame_index_at(t, 25.0) + 2
