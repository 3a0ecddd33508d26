"""The ground-truth alignment suite, run unchanged on a prepared copy of the sample dataset.

Every frame code, tone and subtitle line a sample holds must still come from
its window after re-encoding (smaller frames, 1 s keyframes, 16 kHz mono AAC).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_path = Path(__file__).parents[1] / "test_alignment.py"
_spec = importlib.util.spec_from_file_location("_tali_alignment_suite", _path)
assert _spec is not None and _spec.loader is not None
_suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_suite)

# Every test except the keyframes-only one (it assumes a keyframe every 2 s or more; the
# keyframe test below checks the prepared interval) and the one that asserts the source's full resolution (720p stays 720p
# with size=None; prepared clips are 256 px on the short side by design).
test_every_output_comes_from_the_window = _suite.test_every_output_comes_from_the_window
test_random_choices_differ_across_seeds_epochs_and_rows = (
    _suite.test_random_choices_differ_across_seeds_epochs_and_rows
)
test_fixed_window_starts = _suite.test_fixed_window_starts
test_whole_clip_window_spans_the_clip = _suite.test_whole_clip_window_spans_the_clip
test_window_longer_than_the_clip_pads_frames_and_audio = (
    _suite.test_window_longer_than_the_clip_pads_frames_and_audio
)
test_thumbnail_is_the_middle_frame_unless_a_column_has_one = (
    _suite.test_thumbnail_is_the_middle_frame_unless_a_column_has_one
)


def test_keyframes_come_every_keyframe_interval(rows, truth):
    """``keyframes_only`` on a prepared clip: a keyframe every second, each showing its own frame."""
    from tali import TaliConfig, TaliTransform, VideoConfig, WindowConfig

    config = TaliConfig(
        modalities=["video"],
        video=VideoConfig(keyframes_only=True, num_frames=32),
        window=WindowConfig(seconds=None),
    )
    for item_idx in (0, 1, 6):  # 30 fps, 25 fps, a 10 s source GOP
        t = truth[item_idx]
        video = TaliTransform(config)(rows[item_idx], key=0)["youtube_content_video"]
        pts = [float(video["pts_seconds"][i]) for i in video["mask"].nonzero().flatten().tolist()]
        assert pts == [float(k) for k in range(int(t["duration_seconds"]))]
        for i, p in enumerate(pts):
            _suite._check_frame(t, video["frames"][i], p)
