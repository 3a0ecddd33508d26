"""What a correct pipeline must output for a sample-dataset row, from its truth record.

These functions turn the generator's record (``load_truth(root)[item_idx]``)
into expectations: which code a frame shows, which tone plays at a time,
which subtitle lines a window holds. Tests and users compare against them.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from tali.sample_data.patterns import subtitle_text

__all__ = [
    "expected_frame_code",
    "expected_subtitle_lines",
    "expected_tone_second",
    "frame_index_at",
    "frames_to_decode",
]

Truth = dict[str, Any]


def frame_index_at(truth: Truth, clip_seconds: float) -> int:
    """Index of the frame displayed at ``clip_seconds`` (display order)."""
    times = truth.get("frame_seconds")
    if times is not None:  # real-world variants: the frames' own timestamps
        return max(bisect.bisect_right(times, clip_seconds + 1e-9) - 1, 0)
    last = round(truth["duration_seconds"] * truth["fps"]) - 1
    return min(math.floor(clip_seconds * truth["fps"] + 1e-9), last)


def frames_to_decode(truth: Truth, frame_indices: list[int]) -> tuple[set[int], int]:
    """The least a decoder must decode to show these frames (each one's GOP from its
    keyframe up to it), and how many gapless runs that is: a decoder that chooses
    packets by timestamp learns a run has ended from one packet past it."""
    gop = round(truth["gop_seconds"] * truth["fps"])
    needed = {f for index in frame_indices for f in range(index // gop * gop, index + 1)}
    runs = sum(1 for f in needed if f + 1 not in needed)
    return needed, runs


def expected_frame_code(truth: Truth, frame_index: int) -> int | None:
    """The code frame ``frame_index`` shows; ``None`` for a black frame (no code)."""
    if "first_code" in truth:  # real-world variants: a copy cut starts at a later code
        return int(truth["first_code"]) + frame_index
    t = frame_index / truth["fps"]
    black = truth.get("black_seconds")
    if black and black[0] <= t < black[1]:
        return None
    frozen = truth.get("frozen_seconds")
    if frozen and frozen[0] <= t < frozen[1]:
        return round(frozen[0] * truth["fps"])
    return frame_index


def expected_tone_second(truth: Truth, clip_seconds: float, *, margin: float = 0.03) -> int | None | bool:
    """The clip second whose tone plays at ``clip_seconds``; ``None`` where there is silence
    (no audio, a silent row, before the audio starts, after the clip ends). ``False`` within
    ``margin`` of a stream edge, where either answer is acceptable."""
    if not truth["has_audio"] or truth["silent"]:
        return None
    start = truth["audio_offset_seconds"]
    end = truth.get("audio_end_seconds", truth["duration_seconds"])
    if abs(clip_seconds - start) < margin or abs(clip_seconds - end) < margin:
        return False
    if clip_seconds < start or clip_seconds >= end:
        return None
    # A copy cut keeps the tone of the clip it was cut from: clip time 0 was its second ``shift``.
    return math.floor(clip_seconds + truth.get("tone_shift_seconds", 0.0))


def expected_subtitle_lines(truth: Truth, absolute_start: float, absolute_end: float) -> list[str]:
    """Texts of the lines whose absolute timestamp lies in ``[start, end]``."""
    if truth["subtitle_kind"] in ("null", "empty"):
        return []
    return [
        subtitle_text(s) for s in range(truth["video_seconds"]) if absolute_start <= s + 0.5 <= absolute_end
    ]
