"""Audio family: the window's sound.

``youtube_content_audio``  :class:`AudioWindow`: waveform float32 ``[round(d * sr)]`` (mono),
                           ``sample_rate`` (Hz), ``valid_samples`` (how many are real; the rest
                           is padding past the clip's end), ``missing`` (the clip has no audio).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from tali.clock import Stage, timed
from tali.config import TaliConfig
from tali.decode import resample
from tali.decode.audio import decode_audio_window, silent_window
from tali.sample.base import ReadContext, check_shape, shape_of
from tali.schema import SubModality

__all__ = ["SUBS", "AudioWindow", "TimeMapLike", "placeholder", "read", "retime", "speed_resample"]

S = SubModality
SUBS = (S.YOUTUBE_CONTENT_AUDIO,)


class TimeMapLike(Protocol):
    """What re-timing reads of :class:`tali.augment.TimeMap` (clip ``t = offset + speed * u``)."""

    @property
    def speed(self) -> float: ...
    @property
    def output_seconds(self) -> float: ...

    def to_output(self, t: Any) -> Any: ...


@dataclass(frozen=True)
class AudioWindow:
    """The window's sound; see the module docstring."""

    waveform: torch.Tensor
    sample_rate: int
    valid_samples: int
    missing: bool
    #: Which audio stream of the clip was decoded (``AudioConfig.stream``, else the one marked
    #: default, else the first); -1 when none was (no audio, a placeholder, a live source).
    stream: int = -1

    def __post_init__(self) -> None:
        field = S.YOUTUBE_CONTENT_AUDIO.value
        check_shape(self.waveform.ndim == 1, f"waveform must be [T], got {list(self.waveform.shape)}", field)
        check_shape(self.sample_rate > 0, f"sample_rate must be > 0, got {self.sample_rate}", field)
        check_shape(
            0 <= self.valid_samples <= self.waveform.shape[0],
            f"valid_samples {self.valid_samples} outside [0, {self.waveform.shape[0]}]",
            field,
        )

    def __repr__(self) -> str:
        return (
            f"AudioWindow(waveform={shape_of(self.waveform)}, sample_rate={self.sample_rate}, "
            f"valid_samples={self.valid_samples}, missing={self.missing}, stream={self.stream})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "waveform": self.waveform,
            "sample_rate": self.sample_rate,
            "valid_samples": self.valid_samples,
            "missing": self.missing,
            "stream": self.stream,
        }


def read(ctx: ReadContext) -> dict[str, AudioWindow]:
    cfg, clip, window = ctx.config, ctx.clip, ctx.window
    assert clip is not None and window is not None  # the transform opens both first
    if not cfg.wants(S.YOUTUBE_CONTENT_AUDIO):
        return {}
    if clip.audio is None and cfg.audio.on_missing == "zeros":
        audio = silent_window(window.start_seconds, window.duration_seconds, cfg.audio.sample_rate)
    else:
        with timed(Stage.AUDIO_DECODE):
            audio = decode_audio_window(
                clip,
                window.start_seconds,
                window.duration_seconds,
                cfg.audio.sample_rate,
                downmix=cfg.audio.downmix,
            )
    index = clip.info.audio_stream_index if clip.audio is not None else None
    return {
        S.YOUTUBE_CONTENT_AUDIO.value: AudioWindow(
            torch.from_numpy(audio.samples),
            audio.sample_rate,
            audio.valid_samples,
            audio.missing,
            -1 if index is None else int(index),
        )
    }


def placeholder(config: TaliConfig) -> dict[str, AudioWindow]:
    if not config.wants(S.YOUTUBE_CONTENT_AUDIO):
        return {}
    sr = config.audio.sample_rate
    seconds = config.window.seconds or config.window.nominal_clip_seconds
    return {
        S.YOUTUBE_CONTENT_AUDIO.value: AudioWindow(
            torch.zeros(round(seconds * sr), dtype=torch.float32), sr, 0, True
        )
    }


def retime(value: dict[str, Any], time_map: TimeMapLike) -> None:
    """The source window's audio played ``speed`` times faster, to the output length (in place)."""
    if time_map.speed == 1.0:
        return
    sr = value["sample_rate"]
    n_out = round(time_map.output_seconds * sr)
    value["waveform"] = speed_resample(value["waveform"], sr, time_map.speed, n_out)
    value["valid_samples"] = min(n_out, round(value["valid_samples"] / time_map.speed))


@functools.lru_cache(maxsize=64)
def _polyphase(in_rate: int, out_rate: int) -> resample.Polyphase | None:
    g = math.gcd(in_rate, out_rate)
    if out_rate // g > 1024 or in_rate // g > 8192:
        return None
    return resample.Polyphase(in_rate, out_rate)


def speed_resample(samples: torch.Tensor, sample_rate: int, speed: float, n_out: int) -> torch.Tensor:
    """Play ``samples`` ``speed`` times faster: resample from ``speed * sr`` to ``sr``
    with swresample's filter (``tali.decode.resample``), trimmed or zero-padded to ``n_out``."""
    x = samples.numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples, np.float32)
    if speed == 1.0:
        y = x
    else:
        in_rate = round(sample_rate * speed)
        poly = _polyphase(in_rate, sample_rate)
        if poly is not None and x.size >= poly.min_samples:
            y = poly(x)
        else:
            _, y = resample.swr_resample(np.ascontiguousarray(x, np.float32), in_rate, sample_rate)
    out = np.zeros(n_out, np.float32)
    out[: min(n_out, y.size)] = y[:n_out]
    return torch.from_numpy(out)
