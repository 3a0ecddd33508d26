"""Pure, cheap choices: which window of a clip, which frames, which language.

Nothing here opens media. All randomness of a sample lives here and comes
from one generator seeded by ``(seed, epoch, key)``, so a sample can be
reproduced anywhere (another worker, another rank, after a resume).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tali.config import FrameSelection, Seconds, WindowConfig

__all__ = [
    "FramePlan",
    "Window",
    "choose_window",
    "plan_frames",
    "plan_single_frame",
    "sample_rng",
    "select_slots",
]


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


def choose_window(config: WindowConfig, clip_seconds: Seconds, rng: np.random.Generator) -> Window:
    """Pick the window. Draws from ``rng`` exactly once whatever the mode, so the
    choices after it (frames, language) do not shift when the mode changes."""
    draw = float(rng.random())
    # The duration stays as configured even for a shorter clip, so every sample of
    # a batch has the same shapes; outputs past the clip end are padding.
    duration = clip_seconds if config.seconds is None else float(config.seconds)
    slack = max(clip_seconds - duration, 0.0)
    if config.start == "random":
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
    """Frames to fetch: ``times`` (clip seconds, one per output slot) and which slots are real.

    A padded slot repeats the last real time, so decoding it costs nothing extra.
    """

    times: np.ndarray  # float64 [N]
    mask: np.ndarray  # bool [N]


def _frame_grid(window: Window, fps: float) -> tuple[int, int]:
    """First frame index and count of frames whose display starts inside the window."""
    last_frame = max(int(np.ceil(window.clip_seconds * fps - 1e-6)) - 1, 0)
    first = int(np.ceil(window.start_seconds * fps - 1e-6))
    end = int(np.ceil(window.end_seconds * fps - 1e-6))  # exclusive
    first = min(first, last_frame)
    end = min(max(end, first + 1), last_frame + 1)
    return first, end - first


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
    window: Window,
    fps: float,
    num_frames: int,
    selection: FrameSelection,
    rng: np.random.Generator,
) -> FramePlan:
    """Choose ``num_frames`` frames of the window by ``selection``.

    ``uniform`` spreads them evenly over the window's frames, ``random`` draws
    distinct frames (sorted), ``sequential`` takes consecutive frames from the
    window start. A window with fewer frames keeps all of them and pads.
    Times point at the middle of each frame's display interval, so decoding the
    frame *played at* that time is robust to timestamp rounding.
    """
    first, count = _frame_grid(window, fps)
    offsets, mask = select_slots(count, num_frames, selection, rng)
    times = (first + offsets + 0.5) / fps
    return FramePlan(times=times.astype(np.float64), mask=mask)


def plan_single_frame(window: Window, fps: float, rng: np.random.Generator) -> float:
    """One frame drawn uniformly from the window's frames."""
    first, count = _frame_grid(window, fps)
    return float((first + int(rng.integers(count)) + 0.5) / fps)
