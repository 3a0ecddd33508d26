"""What a sample should contain and how it is cut, as frozen dataclasses.

A config is hashable and picklable: it travels into DataLoader workers and
keys the processed-sample cache. Every string mode is checked at construction
with a message that repeats the bad value and lists the allowed ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from tali.errors import TaliConfigError
from tali.schema import Modality, SubModality, parse_submodalities

__all__ = [
    "AudioConfig",
    "ImageConfig",
    "Seconds",
    "TaliConfig",
    "TextConfig",
    "VideoConfig",
    "WindowConfig",
]

Seconds = float

WindowStart = Literal["random", "start", "centre", "keyframe"]
FrameSelection = Literal["random", "uniform", "sequential"]
FrameOutput = Literal["uint8", "float", "pil"]
OnMissingAudio = Literal["error", "zeros"]
SubtitleScope = Literal["window", "clip"]
Orientation = Literal["display", "stored"]
Downmix = Literal["swresample", "mean"]
LanguageFallback = Literal["random", "first"]


def _check_choice(owner: str, name: str, value: Any, literal: Any) -> None:
    allowed = get_args(literal)
    if value not in allowed:
        raise TaliConfigError(
            f"{owner}.{name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}"
        )


def _check_positive(owner: str, name: str, value: float, *, allow_zero: bool = False) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TaliConfigError(f"{owner}.{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise TaliConfigError(f"{owner}.{name} must be {bound}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class WindowConfig:
    """The one clip window ``[t0, t0 + seconds]`` every clip-based output is cut from.

    ``start``: ``"random"`` draws ``t0`` uniformly from the per-sample seed,
    ``"start"`` uses 0, ``"centre"`` centres the window in the clip; a number
    fixes ``t0`` in seconds (clamped so the window stays inside the clip).
    ``"keyframe"`` draws ``t0`` among the clip's keyframes that have a full window
    after them, so decoding starts at the window's first frame (no pre-roll; see
    docs/PERFORMANCE.md, "Fast decode modes"); a clip with no such keyframe uses its
    first frame (t0 = 0), and a config that never opens the clip (text only) draws
    as ``"random"``. ``seconds=None`` means the whole clip.
    """

    seconds: Seconds | None = 3.0
    start: WindowStart | Seconds = "random"
    #: Clip length assumed when the mp4 itself is not opened (text-only configs) and the
    #: dataset has no duration index (``tali durations``; docs/BATCH.md, "Clip length").
    nominal_clip_seconds: Seconds = 30.0
    #: A clip whose frames span longer than this raises ``TaliDecodeError`` (hostile
    #: timestamps claiming hours): bounds every output sized by the clip (whole-clip audio).
    max_clip_seconds: Seconds = 600.0

    def __post_init__(self) -> None:
        if self.seconds is not None:
            _check_positive("WindowConfig", "seconds", self.seconds)
        if isinstance(self.start, str):
            _check_choice("WindowConfig", "start", self.start, WindowStart)
        else:
            _check_positive("WindowConfig", "start", self.start, allow_zero=True)
        _check_positive("WindowConfig", "nominal_clip_seconds", self.nominal_clip_seconds)
        _check_positive("WindowConfig", "max_clip_seconds", self.max_clip_seconds)


@dataclass(frozen=True, kw_only=True)
class VideoConfig:
    """Frames of ``youtube_content_video`` (and the single-frame outputs).

    Frames come out as ``[N, 3, size, size]``: the short side is scaled to
    ``size`` in PyAV's scaler, then the centre is cropped. ``size=None`` keeps
    the source resolution. Windows with fewer than ``num_frames`` frames are
    padded by repeating the last frame; the sample's ``mask`` says which are real.
    """

    num_frames: int = 8
    selection: FrameSelection = "uniform"
    keyframes_only: bool = False
    size: int | None = 224
    output: FrameOutput = "uint8"
    #: bicubic matches CLIP's preprocessing; "bilinear"/"area" are cheaper.
    interpolation: Literal["bicubic", "bilinear", "area"] = "bicubic"
    #: FFmpeg decoder threads per sample. 1 suits DataLoader workers (one core each).
    decoder_threads: int = 1
    #: Wall-clock limit for decoding one sample's clip (None: no limit). A hostile
    #: clip that would stall a worker raises ``TaliDecodeError`` instead.
    max_decode_seconds: float | None = 30.0
    #: ``"display"``: frames upright as players show them (a clip's display-rotation tag
    #: applied; the sample records it as ``rotation``); ``"stored"``: as encoded.
    orientation: Orientation = "display"
    #: Skip H.264's in-loop deblocking filter while decoding (FFmpeg ``skip_loop_filter=all``):
    #: measured 1.04-1.22x faster decoding on the sample clips, error at 224 px mean 0.2-0.3
    #: levels, p99 3-5 (``benchmarks/decode/bench_fast_modes.py``; the error grows on
    #: natural content and drifts within a GOP). Off by default: exact decoding.
    skip_loop_filter: bool = False

    def __post_init__(self) -> None:
        _check_choice("VideoConfig", "orientation", self.orientation, Orientation)
        if not isinstance(self.skip_loop_filter, bool):
            raise TaliConfigError(
                f"VideoConfig.skip_loop_filter must be a bool, got {self.skip_loop_filter!r}"
            )
        if not isinstance(self.num_frames, int) or self.num_frames < 1:
            raise TaliConfigError(f"VideoConfig.num_frames must be an int >= 1, got {self.num_frames!r}")
        _check_choice("VideoConfig", "selection", self.selection, FrameSelection)
        _check_choice("VideoConfig", "output", self.output, FrameOutput)
        _check_choice(
            "VideoConfig", "interpolation", self.interpolation, Literal["bicubic", "bilinear", "area"]
        )
        if self.size is not None and (not isinstance(self.size, int) or self.size < 1):
            raise TaliConfigError(f"VideoConfig.size must be an int >= 1 or None, got {self.size!r}")
        if not isinstance(self.decoder_threads, int) or self.decoder_threads < 0:
            raise TaliConfigError(
                f"VideoConfig.decoder_threads must be an int >= 0 (0 = FFmpeg's choice), "
                f"got {self.decoder_threads!r}"
            )
        if self.max_decode_seconds is not None:
            _check_positive("VideoConfig", "max_decode_seconds", self.max_decode_seconds)


@dataclass(frozen=True, kw_only=True)
class AudioConfig:
    """``youtube_content_audio``: mono float32 at ``sample_rate``, exactly ``round(d * sr)`` samples."""

    sample_rate: int = 16_000
    #: A clip without an audio stream: raise, or return zeros with ``missing=True``.
    on_missing: OnMissingAudio = "error"
    #: Many channels to mono. ``"swresample"`` (default): FFmpeg's weights, the mono
    #: ``ffmpeg -ac 1`` and torchcodec give (stereo: each channel times sqrt(1/2), so
    #: loud correlated stereo can exceed 1.0); ``"mean"``: weights scaled to sum to 1,
    #: never louder than the loudest channel.
    downmix: Downmix = "swresample"

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, int) or self.sample_rate < 1000:
            raise TaliConfigError(
                f"AudioConfig.sample_rate must be an int >= 1000 Hz, got {self.sample_rate!r}"
            )
        _check_choice("AudioConfig", "on_missing", self.on_missing, OnMissingAudio)
        _check_choice("AudioConfig", "downmix", self.downmix, Downmix)


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    """Wikipedia images and single video frames: RGB ``[3, size, size]``."""

    size: int | None = 224
    output: FrameOutput = "uint8"
    #: Decompression-bomb guard: images with more pixels raise ``TaliImageError``.
    max_pixels: int = 64_000_000

    def __post_init__(self) -> None:
        if self.size is not None and (not isinstance(self.size, int) or self.size < 1):
            raise TaliConfigError(f"ImageConfig.size must be an int >= 1 or None, got {self.size!r}")
        _check_choice("ImageConfig", "output", self.output, FrameOutput)
        _check_positive("ImageConfig", "max_pixels", self.max_pixels)


@dataclass(frozen=True, kw_only=True)
class TextConfig:
    """Wikipedia language choice and subtitle scope.

    ``language``: the priority language of the WIT texts; when a row lacks it,
    ``fallback="random"`` picks one of the row's languages from the per-sample
    seed, ``"first"`` the first listed. ``language=None`` returns every language
    (lists of texts, one per language).
    """

    language: str | None = "en"
    fallback: LanguageFallback = "random"
    subtitles: SubtitleScope = "window"
    #: Subtitle YAML larger than this is rejected before parsing.
    max_subtitle_bytes: int = 4_000_000
    #: Titles, descriptions and WIT texts longer than this raise ``TaliDataError``
    #: (bounds the memory a sample holds; real TALI texts are under 100k characters).
    max_text_chars: int = 1_000_000

    def __post_init__(self) -> None:
        _check_choice("TextConfig", "fallback", self.fallback, LanguageFallback)
        _check_choice("TextConfig", "subtitles", self.subtitles, SubtitleScope)
        _check_positive("TextConfig", "max_subtitle_bytes", self.max_subtitle_bytes)
        _check_positive("TextConfig", "max_text_chars", self.max_text_chars)


def _default_modalities() -> tuple[SubModality, ...]:
    return tuple(SubModality)


@dataclass(frozen=True, kw_only=True)
class TaliConfig:
    """Everything that decides the content of a sample.

    ``modalities`` accepts sub-modality or modality names (``"video"``,
    ``"wikipedia_caption_text"``) and is normalised to a tuple of
    :class:`~tali.schema.SubModality`. ``seed`` is the root of all randomness:
    a sample's choices depend only on ``(seed, epoch, row)``.
    """

    modalities: tuple[SubModality, ...] = field(default_factory=_default_modalities)
    window: WindowConfig = field(default_factory=WindowConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    text: TextConfig = field(default_factory=TextConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            subs = parse_submodalities(self.modalities)
        except ValueError as exc:
            raise TaliConfigError(str(exc)) from None
        object.__setattr__(self, "modalities", subs)
        for name, cls in (
            ("window", WindowConfig),
            ("video", VideoConfig),
            ("audio", AudioConfig),
            ("image", ImageConfig),
            ("text", TextConfig),
        ):
            if not isinstance(getattr(self, name), cls):
                raise TaliConfigError(
                    f"TaliConfig.{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}"
                )

    def wants(self, *subs: SubModality) -> bool:
        return any(s in self.modalities for s in subs)

    @property
    def needs_clip(self) -> bool:
        return any(s.needs_clip for s in self.modalities)

    def replace(self, **changes: Any) -> TaliConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["modalities"] = [s.value for s in self.modalities]
        return out

    def fingerprint(self) -> str:
        """A stable hash of every field: changes whenever any output could change."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def for_modalities(cls, modalities: Iterable[str | Modality | SubModality], **kwargs: Any) -> TaliConfig:
        return cls(modalities=tuple(modalities), **kwargs)
