"""tali's frames against torchcodec's on every real-world variant both decode.

At source resolution (``size=None``) in display orientation, a whole-clip uniform plan:
torchcodec (``seek_mode="exact"``) is asked for the frames played at tali's timestamps.
They are bit-identical, except where torchcodec is wrong by the clip's recorded truth
(tali's frame shows the code of the frame at its timestamp, torchcodec's does not).
Disagreements seen with torchcodec 0.x on FFmpeg 7 libs, all torchcodec's:

- H.264 clips: torchcodec's ``end_stream_seconds`` is the last frame's *start*, so it
  refuses to return the last frame (``frame pts is 7.97; must be less than 7.97``). Those
  times are not asked for.
- ``editlist_cut``: torchcodec ignores the edit list (the copy cut's discarded pre-roll
  frames count as frames), so at clip time 0 it returns a frame from before the cut.
- ``av1``: one slot of six comes back one frame late (its seconds-to-pts rounding on an
  exact frame start).

Needs torchcodec and the FFmpeg libraries it links (``scripts/install-ffmpeg-libs``).
"""

from __future__ import annotations

import numpy as np
from tests.extras import need

from tali import TaliConfig
from tali._optional import available
from tali.config import VideoConfig, WindowConfig
from tali.sample_data import expected_frame_code, frame_index_at, read_frame_index
from tali.sample_data.patterns import CodeUnreadable
from tali.transform import TaliTransform

need(
    available("torchcodec"),
    "the torchcodec comparison needs torchcodec==0.13.0 and FFmpeg 5 (make setup-dev installs both)",
)
import torchcodec.decoders as torchcodec_decoders


def _code(pixels) -> int | None:
    try:
        return read_frame_index(pixels)
    except CodeUnreadable:
        return None


def test_frames_equal_torchcodec_or_torchcodec_is_wrong(real_rows, truth):
    config = TaliConfig(
        modalities=("youtube_content_video",),
        window=WindowConfig(seconds=None),
        video=VideoConfig(size=None, num_frames=6),
    )
    identical = disagreements = 0
    unopened: list[str] = []
    for item_idx, row in real_rows.items():
        t = truth[item_idx]
        video = TaliTransform(config)(row, key=0)["youtube_content_video"]
        try:
            decoder = torchcodec_decoders.VideoDecoder(row["youtube_video_content"], seek_mode="exact")
        except RuntimeError as exc:  # a codec torchcodec's FFmpeg lacks: nothing to compare
            unopened.append(f"{t['variant']}: {exc}")
            continue
        stream_seconds = video["pts_seconds"].numpy() + t["video_start_seconds"]
        asked = np.flatnonzero(stream_seconds < decoder.metadata.end_stream_seconds)
        assert asked.size >= 5, t["variant"]
        theirs = decoder.get_frames_played_at(stream_seconds[asked].tolist())
        for k, slot in enumerate(asked):
            mine = video["frames"][slot]
            same_pts = abs(float(theirs.pts_seconds[k]) - stream_seconds[slot]) < 1e-9
            if same_pts and np.array_equal(mine.numpy(), theirs.data[k].numpy()):
                identical += 1
                continue
            disagreements += 1
            want = expected_frame_code(truth[item_idx], frame_index_at(t, float(video["pts_seconds"][slot])))
            assert _code(mine) == want, f"{t['variant']} slot {slot}: tali's frame is wrong"
            assert _code(theirs.data[k]) != want or not same_pts, f"{t['variant']} slot {slot}"
    assert identical >= 70 and disagreements <= 4, (identical, disagreements, unopened)
