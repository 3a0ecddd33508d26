"""The loader's thumbnail on a prepared clip is an IDR frame: its decode is that one frame.

Without a ``youtube_thumbnail`` column the loader shows the frame on screen at the middle
of the clip; prepare forces a keyframe exactly there (on the output's timeline: after the
fps cap, from clip time 0), so every sample decodes one packet for it instead of the GOP
before it. Checked on every prepared train and realworld row.
"""

from __future__ import annotations

import dataclasses
import io
from fractions import Fraction

import av
import numpy as np
import pytest

from tali import TaliConfig, TaliTransform
from tali.decode.clip import open_clip
from tali.decode.index import middle_frame
from tali.decode.video import decode_frames_at, to_rgb
from tali.errors import TaliDecodeError
from tali.prepare import PrepareSettings
from tali.prepare.timeline import loader_view, plan_timeline

_VIDEO = "youtube_video_content"
CONFIG = TaliConfig(modalities=["youtube_thumbnail_image"])


def _check(row: dict, label: object) -> None:
    data = row[_VIDEO]
    thumb = TaliTransform(CONFIG)(dict(row, youtube_thumbnail=None), key=7, epoch=2)[
        "youtube_thumbnail_image"
    ]
    t = thumb["pts_seconds"]
    view = loader_view(data)
    picked = view.thumbnail
    assert abs(float(picked) - t) < 1e-9 and view.thumbnail_is_keyframe, label  # prepare's check agrees
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        key = {
            (p.pts - origin) * stream.time_base: p.is_keyframe  # exact clip seconds
            for p in container.demux(stream)
            if p.pts is not None and p.size
        }
        assert key[picked], f"{label}: the thumbnail's packet at {t} s is not a keyframe"
        container.seek(0)
        full = [f for f in container.decode(stream) if (f.pts - origin) * stream.time_base == picked]
    assert len(full) == 1, label
    reference = to_rgb(full[0], CONFIG.image.size, CONFIG.video.interpolation, rotate=True)
    np.testing.assert_array_equal(thumb["pixels"].numpy(), reference, err_msg=str(label))
    # The loader's thumbnail plan decodes from that keyframe: it and the packet after it (a
    # frame is settled once the next one arrives), not the GOP before it.
    with open_clip(data) as clip:
        frames, shown = middle_frame(clip)  # the scan the transform's thumbnail decodes
        decoded = decode_frames_at(clip, frames, [shown], size=CONFIG.image.size)
    assert decoded.decoded_packets <= 2 and decoded.pts_seconds[0] == t, label


def test_the_thumbnail_is_a_keyframe_on_every_prepared_train_row(rows):
    for item_idx, row in rows.items():
        _check(row, item_idx)


def test_the_thumbnail_is_a_keyframe_on_every_prepared_realworld_row(real_pairs, real_truth):
    for item_idx, (_original, prepared) in real_pairs.items():
        _check(prepared, real_truth[item_idx]["variant"])


def _source(real_pairs, real_truth, variant: str) -> bytes:
    item = next(i for i, t in real_truth.items() if t["variant"] == variant)
    return real_pairs[item][0][_VIDEO]


def test_a_wrong_prediction_is_caught_on_the_output_and_encoded_again(real_pairs, real_truth, monkeypatch):
    """The plan is checked with the loader's own pick on the encoded clip: a first plan
    with the keyframe on the wrong frame is re-encoded once, on the frame picked."""
    from tali.prepare import encode, reencode

    plans = []

    def first_plan_wrong(clip, settings, *, thumbnail=None, key_last=False):
        plan = plan_timeline(clip, settings, thumbnail=thumbnail, key_last=key_last)
        plans.append(plan)
        if len(plans) == 1:  # frame 1: not the middle of the 7.5 s clip (3.733 s is)
            wrong = int(plan.pts[1])
            keyframes = plan.keyframes - {plan.thumbnail} | {wrong}
            return dataclasses.replace(plan, thumbnail=wrong, keyframes=keyframes)
        return plan

    monkeypatch.setattr(encode, "plan_timeline", first_plan_wrong)
    result = reencode(_source(real_pairs, real_truth, "editlist_cut"), PrepareSettings())
    assert len(plans) == 2 and plans[1].thumbnail == plans[0].thumbnail != int(plans[0].pts[1])
    view = loader_view(result.data)
    assert view.thumbnail_is_keyframe
    assert float(view.thumbnail) == result.thumbnail_seconds == plans[1].seconds(plans[1].thumbnail)
    assert 3.7 < result.thumbnail_seconds < 3.75


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            {"thumbnail": Fraction(1, 3), "thumbnail_is_keyframe": False},
            r"shows a thumbnail frame that is not a keyframe \(clip time 0.333333 s\).*item_idx=36",
        ),
        ({"end": Fraction(21, 10)}, r"ends at 2.1 s, not where the source does \(2 s\).*item_idx=36"),
    ],
)
def test_an_output_the_loader_still_reads_otherwise_fails_the_row(
    real_pairs, real_truth, monkeypatch, wrong, message
):
    from tali.prepare import encode, reencode

    seen = []

    def misread(data, item_idx=None):
        seen.append(item_idx)
        return dataclasses.replace(loader_view(data), **wrong)

    monkeypatch.setattr(encode, "loader_view", misread)
    with pytest.raises(TaliDecodeError, match=message):
        reencode(_source(real_pairs, real_truth, "clip2s"), PrepareSettings(), item_idx=36)
    assert seen == [36, 36], "encoded twice: the second time with the fix, then refused"
