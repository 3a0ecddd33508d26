"""The window the loader would cut from a row, for the config the page edits.

The page's knobs (:class:`SampleParams`) become a :class:`~tali.config.TaliConfig`, and the
sample comes from :class:`~tali.transform.TaliTransform` keyed by the row's global index in
its split, exactly as ``TaliDataset(source, split=split, config=params.config())`` after
``set_epoch(params.epoch)`` returns item ``index``; nothing here re-implements a choice.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, get_args

import numpy as np

from tali.config import FrameSelection, TaliConfig, WindowConfig
from tali.decode.audio import decode_audio_window
from tali.decode.clip import ClipInfo, open_clip
from tali.errors import TaliConfigError
from tali.schema import Column, SubModality
from tali.transform import TaliTransform
from tali.view.media import ANALYSIS_RATE

__all__ = ["BoundedCache", "ClipOverview", "SampleParams", "WindowSample", "clip_overview", "decode_window"]

S = SubModality
#: What the page shows of a window: the frames strip, the audio and the subtitle text.
WINDOW_MODALITIES = (S.YOUTUBE_CONTENT_VIDEO, S.YOUTUBE_CONTENT_AUDIO, S.YOUTUBE_SUBTITLE_TEXT)
_STARTS = ("random", "start", "centre")
#: Bounds that keep one request cheap (a page asking for 10,000 frames is refused).
MAX_FRAMES, MAX_SIZE, MAX_SECONDS = 64, 512, 600.0


def _number(query: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise TaliConfigError(
            f"{name}={raw[:40]!r} is not {'an integer' if kind is int else 'a number'}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise TaliConfigError(f"{name}={raw[:40]!r} is not a finite number")
    return value


def _bounded(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise TaliConfigError(f"{name}={value!r} is out of range [{low:g}, {high:g}]")


@dataclass(frozen=True, kw_only=True)
class SampleParams:
    """The config knobs the page edits. ``seconds=None``: the whole clip; ``start``: a mode
    of :class:`~tali.config.WindowConfig` or a fixed start in clip seconds."""

    seconds: float | None = 3.0
    start: str | float = "random"
    num_frames: int = 8
    selection: FrameSelection = "uniform"
    size: int = 224
    seed: int = 0
    epoch: int = 0

    def __post_init__(self) -> None:
        # The page's own words (its "seconds" box takes "whole"), checked before WindowConfig,
        # whose messages give Python advice ("use seconds=None").
        clip = WindowConfig().nominal_clip_seconds
        if self.seconds is not None:
            _bounded("seconds", self.seconds, 0.01, MAX_SECONDS)
            if self.seconds > clip:
                raise TaliConfigError(
                    f"seconds={self.seconds:g} is longer than a clip ({clip:g} s): "
                    f"type 'whole' in the seconds box for the whole clip, or at most {clip:g}"
                )
        if isinstance(self.start, str):
            if self.start not in _STARTS:
                raise TaliConfigError(
                    f"start={self.start!r}: choose {', '.join(_STARTS)} or a number of seconds"
                )
        else:
            _bounded("start", self.start, 0, MAX_SECONDS)
            if self.start >= clip:
                raise TaliConfigError(
                    f"start at {self.start:g} s is past the end of a clip ({clip:g} s): "
                    "choose a start below that, or random, start or centre"
                )
        _bounded("num_frames", self.num_frames, 1, MAX_FRAMES)
        _bounded("size", self.size, 16, MAX_SIZE)
        _bounded("seed", self.seed, 0, 2**63 - 1)
        _bounded("epoch", self.epoch, 0, 2**31 - 1)
        if self.selection not in get_args(FrameSelection):
            raise TaliConfigError(
                f"selection={self.selection!r}: choose {', '.join(get_args(FrameSelection))}"
            )

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> SampleParams:
        """From URL query parameters (missing ones keep their defaults)."""
        seconds_text = query.get("seconds", "3")
        seconds = None if seconds_text in ("whole", "clip", "none") else _number(query, "seconds", float, 3.0)
        start_text = query.get("start", "random") or "random"
        start: str | float = start_text if start_text in _STARTS else _number(query, "start", float, 0.0)
        return cls(
            seconds=seconds,
            start=start,
            num_frames=_number(query, "num_frames", int, 8),
            selection=query.get("selection", "uniform") or "uniform",  # type: ignore[arg-type]
            size=_number(query, "size", int, 224),
            seed=_number(query, "seed", int, 0),
            epoch=_number(query, "epoch", int, 0),
        )

    def config(self) -> TaliConfig:
        return TaliConfig.from_dict(
            {
                "modalities": list(WINDOW_MODALITIES),
                "window": {"seconds": self.seconds, "start": self.start},
                "video": {"num_frames": self.num_frames, "selection": self.selection, "size": self.size},
                # The viewer shows rows without audio too: their window audio is zeros, marked missing.
                "audio": {"on_missing": "zeros"},
                "image": {"size": self.size},
                "seed": self.seed,
            },
            where="the page's settings",
        )

    def to_query(self) -> dict[str, str]:
        return {
            "seconds": "whole" if self.seconds is None else f"{self.seconds:g}",
            "start": self.start if isinstance(self.start, str) else f"{self.start:g}",
            "num_frames": str(self.num_frames),
            "selection": self.selection,
            "size": str(self.size),
            "seed": str(self.seed),
            "epoch": str(self.epoch),
        }


@dataclass(frozen=True)
class WindowSample:
    """One window as the loader returns it (numpy views of its tensors)."""

    item_idx: int | None
    key: int
    epoch: int
    start_seconds: float
    duration_seconds: float
    clip_seconds: float
    frames: np.ndarray  # uint8 [N, 3, S, S]
    pts_seconds: np.ndarray  # float64 [N], clip seconds
    mask: np.ndarray  # bool [N], False = padding (repeats the last real frame)
    waveform: np.ndarray  # float32 [round(d * sample_rate)]
    sample_rate: int
    valid_samples: int
    audio_missing: bool
    subtitle_text: str
    subtitle_lines: int

    def summary(self) -> dict[str, Any]:
        return {
            "item_idx": self.item_idx,
            "key": self.key,
            "epoch": self.epoch,
            "start_seconds": self.start_seconds,
            "duration_seconds": self.duration_seconds,
            "clip_seconds": self.clip_seconds,
            "frames": [
                {"slot": k, "pts_seconds": None if math.isnan(t) else float(t), "real": bool(m)}
                for k, (t, m) in enumerate(zip(self.pts_seconds.tolist(), self.mask.tolist()))
            ],
            "frame_shape": list(self.frames.shape),
            "audio": {
                "samples": int(self.waveform.size),
                "sample_rate": self.sample_rate,
                "valid_samples": self.valid_samples,
                "missing": self.audio_missing,
            },
            "subtitles": {"text": self.subtitle_text, "num_lines": self.subtitle_lines},
        }


def decode_window(row: Mapping[str, Any], *, key: int, params: SampleParams) -> WindowSample:
    """Run :class:`TaliTransform` on ``row`` as :class:`TaliDataset` would for item ``key``
    (the window is keyed by the row's ``item_idx``, :func:`tali.window.seed_key`)."""
    sample = TaliTransform(params.config())(row, key=key, epoch=params.epoch)
    video, audio = sample[S.YOUTUBE_CONTENT_VIDEO.value], sample[S.YOUTUBE_CONTENT_AUDIO.value]
    subtitles, window = sample[S.YOUTUBE_SUBTITLE_TEXT.value], sample["window"]
    return WindowSample(
        item_idx=sample["item_idx"],
        key=key,
        epoch=params.epoch,
        start_seconds=float(window["start_seconds"]),
        duration_seconds=float(window["duration_seconds"]),
        clip_seconds=float(window["clip_seconds"]),
        frames=video["frames"].numpy(),
        pts_seconds=video["pts_seconds"].numpy(),
        mask=video["mask"].numpy(),
        waveform=audio["waveform"].numpy(),
        sample_rate=int(audio["sample_rate"]),
        valid_samples=int(audio["valid_samples"]),
        audio_missing=bool(audio["missing"]),
        subtitle_text=subtitles["text"],
        subtitle_lines=int(subtitles["num_lines"]),
    )


@dataclass(frozen=True)
class ClipOverview:
    """The whole clip: what its container says and its audio, mono at ANALYSIS_RATE Hz (the
    first MAX_SECONDS of it)."""

    info: ClipInfo
    audio: np.ndarray | None  # float32 [round(duration * ANALYSIS_RATE)]; None: no audio stream


def clip_overview(row: Mapping[str, Any], *, max_seconds: float | None = 60.0) -> ClipOverview:
    """Opened from the row's own bytes (never ``youtube_video_file_path``)."""
    item_idx = row.get(str(Column.ITEM_IDX))
    with open_clip(
        row.get(str(Column.YOUTUBE_VIDEO_CONTENT)), item_idx=item_idx, max_seconds=max_seconds
    ) as clip:
        audio = None
        if clip.audio is not None:
            # A hostile header may claim hours: analyse at most MAX_SECONDS (TALI clips are 30 s).
            seconds = min(clip.info.duration_seconds, MAX_SECONDS)
            audio = decode_audio_window(clip, 0.0, seconds, ANALYSIS_RATE).samples
        return ClipOverview(clip.info, audio)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """The last ``size`` results by key, shared by the server's threads. Two threads asking
    for the same missing key may both compute it; the result is the same."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
