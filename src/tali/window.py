"""Pure, cheap choices: which window of a clip, which frames, which language.

Nothing here opens media. All randomness of a sample lives here and comes
from one generator seeded by ``(seed, epoch, key)``, so a sample can be
reproduced anywhere (another worker, another rank, after a resume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tali.config import FrameSelection, Seconds, WindowConfig

__all__ = [
    "FramePlan",
    "Window",
    "choose_window",
    "plan_frames",
    "plan_single_frame",
    "sample_rng",
    "seed_key",
    "select_slots",
]


def seed_key(row: Any, position: int) -> int:
    """The key every random choice of a row is seeded by (with the seed, epoch and purpose).

    The row's ``item_idx`` when it is a non-negative int, else its ``position`` in the
    source. ``item_idx`` is a property of the row, so the same row gets the same window,
    frames and language whichever entry point reads it (``TaliDataset``, ``TaliStream``,
    ``tali.hf``, ``tali.ray``, ``tali.view``) and whatever was done to the split before
    (``tali filter --out``, ``tali prepare``, sharding across ranks): a position changes
    with all of these. ``position`` is the fallback for rows without an id (and
    ``tali.live``'s window number, whose windows have no row).
    """
    item_idx = row.get("item_idx") if hasattr(row, "get") else None
    if isinstance(item_idx, int | np.integer) and not isinstance(item_idx, bool) and item_idx >= 0:
        return int(item_idx)
    return int(position)


def sample_rng(seed: int, epoch: int, key: int) -> np.random.Generator:
    """The generator behind every random choice of one sample."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & (2**63 - 1), int(epoch), int(key)]))


@dataclass(frozen=True)
class Window:
    """``[start_seconds, start_seconds + duration_seconds]`` on the clip timeline (0 = first frame)."""

    start_seconds: Seconds
    duration_seconds: Seconds
    clip_seconds: Seconds

    @property
    def end_seconds(self) -> Seconds:
        return self.start_seconds + self.duration_seconds


def choose_window(
    config: WindowConfig,
    clip_seconds: Seconds,
    rng: np.random.Generator,
    keyframes: np.ndarray | None = None,
) -> Window:
    """Pick the window. Draws from ``rng`` exactly once whatever the mode, so the
    choices after it (frames, language) do not shift when the mode changes.

    ``keyframes`` (clip seconds, ascending) is needed by ``start="keyframe"`` only;
    without it that mode draws like ``"random"``."""
    draw = float(rng.random())
    # The duration stays as configured even for a shorter clip, so every sample of
    # a batch has the same shapes; outputs past the clip end are padding.
    duration = clip_seconds if config.seconds is None else float(config.seconds)
    slack = max(clip_seconds - duration, 0.0)
    if config.start == "keyframe" and keyframes is not None:
        # Keyframes with a full window after them (a hair of float slack); else the first frame.
        fits = keyframes[(keyframes >= 0) & (keyframes <= slack + 1e-9)]
        start = float(fits[min(int(draw * len(fits)), len(fits) - 1)]) if len(fits) else 0.0
    elif config.start in ("random", "keyframe"):
        start = draw * slack
    elif config.start == "start":
        start = 0.0
    elif config.start == "centre":
        start = slack / 2
    else:
        start = min(float(config.start), slack)
    return Window(start_seconds=start, duration_seconds=duration, clip_seconds=clip_seconds)


@dataclass(frozen=True)
class FramePlan:
    """Frames to fetch, one per output slot: ``indices`` into the window's frames
    (``candidates`` of :func:`plan_frames`), ``times`` their clip seconds, and which
    slots are real.

    A padded slot repeats the last real frame, so decoding it costs nothing extra.
    """

    indices: np.ndarray  # int64 [N]
    times: np.ndarray  # float64 [N]
    mask: np.ndarray  # bool [N]


def select_slots(
    count: int, num: int, selection: FrameSelection, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``num`` of ``count`` candidates (indices, ascending) and a mask of real slots.

    Fewer candidates than slots: all of them, then the last one repeated.
    """
    if count >= num:
        if selection == "uniform":
            offsets = np.round(np.linspace(0, count - 1, num)).astype(np.int64)
        elif selection == "random":
            offsets = np.sort(rng.choice(count, size=num, replace=False))
        else:  # sequential
            offsets = np.arange(num)
        return offsets, np.ones(num, dtype=bool)
    offsets = np.concatenate([np.arange(count), np.full(num - count, max(count - 1, 0))])
    return offsets.astype(np.int64), np.arange(num) < count


def plan_frames(
    candidates: np.ndarray,
    num_frames: int,
    selection: FrameSelection,
    rng: np.random.Generator,
) -> FramePlan:
    """Choose ``num_frames`` of the window's frames by ``selection``.

    ``candidates`` are the clip seconds of the frames the window holds, ascending:
    the real timestamps of the frames starting in it (``FrameTimes.in_window``), not
    a constant-rate grid, so variable frame rate, reordering and late starts plan
    the frames the decoder will show. ``uniform`` spreads them evenly over those
    frames, ``random`` draws distinct ones (sorted), ``sequential`` takes
    consecutive ones from the window start. Fewer frames than slots: all, then
    padding. No frames at all: every slot is padding (index 0, NaN time).
    """
    candidates = np.asarray(candidates, dtype=np.float64)
    offsets, mask = select_slots(candidates.size, num_frames, selection, rng)
    if candidates.size == 0:
        return FramePlan(indices=np.zeros(num_frames, np.int64), times=np.full(num_frames, np.nan), mask=mask)
    return FramePlan(indices=offsets, times=candidates[offsets], mask=mask)


def plan_single_frame(count: int, rng: np.random.Generator) -> int:
    """One of the window's ``count`` frames, drawn uniformly (0 when there are none)."""
    return int(rng.integers(count)) if count > 0 else 0
