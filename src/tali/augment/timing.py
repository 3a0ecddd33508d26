"""Temporal jitter and speed perturbation of the window, applied to every modality at once.

A :class:`TimeMap` sends output time ``u`` (seconds from the start of the
sample's window, ``0 <= u <= duration``) to clip time
``t = offset_seconds + speed * u``. The window is chosen as usual, moved by
the jitter, and stretched to ``speed * duration`` seconds of source; then

- frames are planned and decoded on that source window: the same number of
  slots, so at ``speed=1.1`` they span 10 % more of the clip; each frame's
  ``output_seconds = (pts_seconds - offset_seconds) / speed``;
- the source window's audio (``round(speed * d * sr)`` samples) is resampled to
  ``round(d * sr)`` samples, i.e. played ``speed`` times faster: a tone of
  ``h`` Hz comes out at ``speed * h`` Hz (Kaldi/lhotse speed perturbation);
- subtitle lines are those of the source window, with ``line_seconds`` on the
  output timeline.

``speed`` is drawn on a grid (``speed_step``) so the audio resampler is one of a
few rate pairs, each built once per process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tali.config import WindowConfig
from tali.errors import TaliConfigError
from tali.sample.audio import speed_resample
from tali.window import Window, choose_window

__all__ = ["TimeAugment", "TimeMap", "speed_resample"]


@dataclass(frozen=True, kw_only=True)
class TimeAugment:
    """``jitter_seconds``: the window start moves by ``U(-j, j)`` (staying inside
    the clip); every modality follows, so this is also the audio "time shift with
    frames following". ``speed``: ``(low, high)`` factor range, or ``None``.
    Both are off unless named; :meth:`default` is the recommended set."""

    jitter_seconds: float = 0.0
    speed: tuple[float, float] | None = None
    speed_step: float = 0.02

    @classmethod
    def default(cls) -> TimeAugment:
        """Speed perturbation 0.9-1.1x (Kaldi/lhotse's usual range), no jitter."""
        return cls(speed=(0.9, 1.1))

    def __post_init__(self) -> None:
        if not isinstance(self.jitter_seconds, int | float) or self.jitter_seconds < 0:
            raise TaliConfigError(f"TimeAugment.jitter_seconds must be >= 0, got {self.jitter_seconds!r}")
        if self.speed is not None:
            lo, hi = self.speed
            if not 0.5 <= lo <= hi <= 2.0:
                raise TaliConfigError(
                    f"TimeAugment.speed must be (low, high) with 0.5 <= low <= high <= 2.0, got {self.speed!r}"
                )
        if not 0.001 <= self.speed_step <= 0.5:
            raise TaliConfigError(f"TimeAugment.speed_step must be in [0.001, 0.5], got {self.speed_step!r}")

    def draw(self, rng: np.random.Generator) -> tuple[float, float]:
        """``(jitter_seconds, speed)``; always two draws."""
        jitter = float(rng.uniform(-1.0, 1.0)) * self.jitter_seconds
        u = float(rng.random())
        if self.speed is None:
            return jitter, 1.0
        lo, hi = self.speed
        steps = math.floor((hi - lo) / self.speed_step + 1e-9)
        speed = lo + min(math.floor(u * (steps + 1)), steps) * self.speed_step
        return jitter, round(speed, 6)

    def choose(self, config: WindowConfig, clip_seconds: float, rng: Any) -> Window:
        """The source window: the usual window, jittered, ``speed`` times as long.
        ``rng(purpose)`` gives the sample's generator for a purpose."""
        base = choose_window(config, clip_seconds, rng("window"))
        jitter, speed = self.draw(rng("augment.time"))
        duration = base.duration_seconds * speed
        slack = max(clip_seconds - duration, 0.0)
        start = min(max(base.start_seconds + jitter, 0.0), slack)
        return Window(start_seconds=start, duration_seconds=duration, clip_seconds=clip_seconds)

    def time_map(self, window: Window, config: WindowConfig) -> TimeMap:
        """The map of a window :meth:`choose` returned (its speed is its length over
        the configured one: no second draw)."""
        base = window.clip_seconds if config.seconds is None else float(config.seconds)
        speed = round(window.duration_seconds / base, 6)
        return TimeMap(
            offset_seconds=window.start_seconds,
            speed=speed,
            output_seconds=window.duration_seconds / speed,
        )


@dataclass(frozen=True)
class TimeMap:
    """Clip time ``t = offset_seconds + speed * u`` of output time ``u`` in ``[0, output_seconds]``."""

    offset_seconds: float
    speed: float
    output_seconds: float

    def to_clip(self, u: Any) -> Any:
        return self.offset_seconds + self.speed * u

    def to_output(self, t: Any) -> Any:
        return (t - self.offset_seconds) / self.speed

    def to_dict(self) -> dict[str, float]:
        return {
            "offset_seconds": float(self.offset_seconds),
            "speed": float(self.speed),
            "output_seconds": float(self.output_seconds),
        }
