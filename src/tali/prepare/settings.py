"""What `tali prepare` re-encodes to: one frozen, keyword-only settings object.

The defaults were chosen by measurement (``benchmarks/prepare/bench_prepare.py``,
numbers in docs/PERFORMANCE.md): see the comments next to each codec choice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from tali.errors import TaliConfigError

__all__ = ["AudioCodec", "OnRowError", "PrepareSettings", "X264Preset"]

AudioCodec = Literal["aac", "flac", "libopus"]
X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"]
#: A row whose clip cannot be re-encoded: ``keep`` copies it unchanged (its clip is still the
#: source's, listed in the report and the shard metadata), ``drop`` leaves it out (counted and
#: listed), ``raise`` stops the run.
OnRowError = Literal["keep", "drop", "raise"]


def _check(name: str, value: Any, literal: Any) -> None:
    allowed = get_args(literal)
    if value not in allowed:
        raise TaliConfigError(f"PrepareSettings.{name} must be one of {allowed}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class PrepareSettings:
    #: Output short side in pixels (even); never upscaled. 256 lets 224 crops skip upscaling.
    short_side: int = 256
    #: Frames faster than this are dropped (the kept frames keep their timestamps; a frame
    #: goes only if it starts under 0.9 / max_fps after the last kept one:
    #: ``timeline.FPS_CAP_SLACK``).
    max_fps: float = 30.0
    #: An IDR frame at the first frame of every multiple of this (clip seconds), so a
    #: window's pre-roll is at most this long (plus one on the loader's thumbnail frame).
    keyframe_seconds: float = 1.0
    #: x264 constant rate factor (quality; lower is better and larger).
    crf: int = 23
    preset: X264Preset = "veryfast"
    #: x264 ``tune=fastdecode`` (no CABAC, no deblocking, no weighted prediction): decodes
    #: faster at a size cost. Measured in the prepare benchmark.
    fastdecode: bool = True
    #: B-frames between reference frames, none of them a reference (no pyramid, fixed run):
    #: the loader skips those it does not show. 3 decodes 2.6x fewer packets per window
    #: than 0 and is smaller (measured in benchmarks/prepare/bench_prepare.py).
    bframes: int = 3
    #: Audio is resampled once, here, to the rate training asks for; mono.
    audio_rate: int = 16_000
    audio_codec: AudioCodec = "aac"
    audio_bitrate: int = 48_000
    on_error: OnRowError = "keep"
    #: Per-row re-encode budget, wall-clock seconds (a hostile clip cannot stall a worker).
    max_decode_seconds: float = 120.0
    #: Deprecated keyword for ``max_decode_seconds``, accepted with a ``DeprecationWarning``.
    max_clip_seconds: dataclasses.InitVar[float | None] = None

    def __post_init__(self, max_clip_seconds: float | None) -> None:
        from tali.limits import renamed

        renamed(self, "max_clip_seconds", max_clip_seconds, "max_decode_seconds")
        _check("audio_codec", self.audio_codec, AudioCodec)
        _check("preset", self.preset, X264Preset)
        _check("on_error", self.on_error, OnRowError)
        if not isinstance(self.short_side, int) or self.short_side < 16 or self.short_side % 2:
            raise TaliConfigError(
                f"PrepareSettings.short_side must be an even int >= 16, got {self.short_side!r}"
            )
        for name in ("max_fps", "keyframe_seconds", "max_decode_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise TaliConfigError(f"PrepareSettings.{name} must be > 0, got {value!r}")
        if not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise TaliConfigError(f"PrepareSettings.crf must be an int in [0, 51], got {self.crf!r}")
        if not isinstance(self.bframes, int) or not 0 <= self.bframes <= 16:
            raise TaliConfigError(f"PrepareSettings.bframes must be an int in [0, 16], got {self.bframes!r}")
        if self.audio_rate not in (8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000):
            raise TaliConfigError(f"PrepareSettings.audio_rate {self.audio_rate!r} is not a standard rate")
        if self.audio_codec == "libopus" and self.audio_rate not in (8_000, 16_000, 24_000, 48_000):
            raise TaliConfigError(f"libopus needs 8, 16, 24 or 48 kHz, got {self.audio_rate}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> PrepareSettings:
        return dataclasses.replace(self, **changes)
