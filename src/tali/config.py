"""What a sample should contain and how it is cut, as frozen dataclasses.

A config is hashable and picklable: it travels into DataLoader workers and
keys the processed-sample cache. Every string mode is checked at construction
with a message that repeats the bad value and lists the allowed ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from tali.errors import TaliConfigError
from tali.limits import ClipLimits
from tali.schema import Modality, SubModality, parse_submodalities

__all__ = [
    "AudioConfig",
    "ImageConfig",
    "Seconds",
    "TaliConfig",
    "TextConfig",
    "VideoConfig",
    "WindowConfig",
    "build_dataclass",
    "refuse_non_finite",
]

Seconds = float

WindowStart = Literal["random", "start", "centre", "keyframe"]
FrameSelection = Literal["random", "uniform", "sequential"]
FrameOutput = Literal["uint8", "float", "pil"]
OnMissingAudio = Literal["error", "zeros"]
SubtitleScope = Literal["window", "clip"]
Orientation = Literal["display", "stored"]
ThumbnailFrame = Literal["middle", "keyframe"]
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
    if not math.isfinite(value):
        raise TaliConfigError(f"{owner}.{name} must be a finite number, got {value!r}")
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

    A window longer than ``nominal_clip_seconds`` (TALI's clips are 30 s) is
    refused: it could only be padding. A clip that is shorter than the window
    (a few TALI clips are) keeps the configured duration so a batch has one
    shape; the sample records ``clip_seconds`` and every output marks what is
    padding (frame ``mask``, audio ``valid_samples``).
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
        if self.seconds is not None and self.seconds > self.nominal_clip_seconds:
            raise TaliConfigError(
                f"WindowConfig.seconds={self.seconds!r} is longer than the clips "
                f"(nominal_clip_seconds={self.nominal_clip_seconds!r}; TALI's clips are 30 s): "
                f"use seconds=None for the whole clip, or raise nominal_clip_seconds for longer clips"
            )
        if not isinstance(self.start, str) and self.start >= self.nominal_clip_seconds:
            raise TaliConfigError(
                f"WindowConfig.start={self.start!r} is past the end of the clips "
                f"(nominal_clip_seconds={self.nominal_clip_seconds!r})"
            )


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
    #: Bounds checked when the clip is opened, before FFmpeg decodes or indexes
    #: anything (see ``tali.limits.ClipLimits`` and docs/QUALITY.md).
    max_clip_bytes: int = ClipLimits.max_bytes
    max_frame_pixels: int = ClipLimits.max_frame_pixels
    max_edit_list_entries: int = ClipLimits.max_edit_list_entries
    max_samples: int = ClipLimits.max_samples
    #: FFmpeg codec names a stream may use (``tali.limits.VIDEO_CODECS + AUDIO_CODECS``).
    codecs: tuple[str, ...] = ClipLimits.codecs
    #: ``"display"``: frames upright as players show them (a clip's display-rotation tag
    #: applied; the sample records it as ``rotation``); ``"stored"``: as encoded.
    orientation: Orientation = "display"
    #: Skip H.264's in-loop deblocking filter while decoding (FFmpeg ``skip_loop_filter=all``):
    #: measured 1.04-1.22x faster decoding on the sample clips, error at 224 px mean 0.2-0.3
    #: levels, p99 3-5 (``benchmarks/decode/bench_fast_modes.py``; the error grows on
    #: natural content and drifts within a GOP). Off by default: exact decoding.
    skip_loop_filter: bool = False
    #: The thumbnail of a row without a ``youtube_thumbnail`` column: ``"middle"``, the frame
    #: shown at the middle of the clip (decoded from the keyframe before it, every sample);
    #: ``"keyframe"``, the keyframe in force then (one frame decoded; up to a GOP earlier).
    #: The same on ``tali prepare``'s shards, which put a keyframe on the middle frame.
    thumbnail: ThumbnailFrame = "middle"

    def __post_init__(self) -> None:
        _check_choice("VideoConfig", "orientation", self.orientation, Orientation)
        _check_choice("VideoConfig", "thumbnail", self.thumbnail, ThumbnailFrame)
        for name in ("max_clip_bytes", "max_frame_pixels", "max_edit_list_entries", "max_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TaliConfigError(f"VideoConfig.{name} must be an int >= 1, got {value!r}")
        if isinstance(self.codecs, str) or not all(isinstance(c, str) and c for c in self.codecs):
            raise TaliConfigError(f"VideoConfig.codecs must be a tuple of codec names, got {self.codecs!r}")
        object.__setattr__(self, "codecs", tuple(self.codecs))
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

    @property
    def clip_limits(self) -> ClipLimits:
        return ClipLimits(
            max_bytes=self.max_clip_bytes,
            max_frame_pixels=self.max_frame_pixels,
            max_edit_list_entries=self.max_edit_list_entries,
            max_samples=self.max_samples,
            codecs=self.codecs,
        )


@dataclass(frozen=True, kw_only=True)
class AudioConfig:
    """``youtube_content_audio``: mono float32 at ``sample_rate``, exactly ``round(d * sr)`` samples.

    ``on_missing``: a clip whose mp4 has no audio stream (a property of some
    clips, not corruption) gives zeros with ``missing=True`` and
    ``valid_samples=0`` by default, so a batch keeps its rows; ``"error"``
    raises :class:`~tali.errors.TaliMissingStreamError` instead (combine with
    ``on_error="skip"`` to drop such rows, counted).
    """

    sample_rate: int = 16_000
    on_missing: OnMissingAudio = "zeros"
    #: Many channels to mono. ``"swresample"`` (default): FFmpeg's weights, the mono
    #: ``ffmpeg -ac 1`` and torchcodec give (stereo: each channel times sqrt(1/2), so
    #: loud correlated stereo can exceed 1.0); ``"mean"``: weights scaled to sum to 1,
    #: never louder than the loudest channel.
    downmix: Downmix = "swresample"
    #: Which audio stream of a clip with several: ``None`` (default) the one marked default
    #: (as ffmpeg and players choose), else the first; an int picks that audio stream
    #: (0: the first), and a clip without it raises ``TaliMissingStreamError``.
    stream: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, int) or self.sample_rate < 1000:
            raise TaliConfigError(
                f"AudioConfig.sample_rate must be an int >= 1000 Hz, got {self.sample_rate!r}"
            )
        if self.stream is not None and (
            not isinstance(self.stream, int) or isinstance(self.stream, bool) or self.stream < 0
        ):
            raise TaliConfigError(f"AudioConfig.stream must be None or an int >= 0, got {self.stream!r}")
        _check_choice("AudioConfig", "on_missing", self.on_missing, OnMissingAudio)
        _check_choice("AudioConfig", "downmix", self.downmix, Downmix)


@dataclass(frozen=True, kw_only=True)
class ImageConfig:
    """Wikipedia images and single video frames: RGB ``[3, size, size]``."""

    size: int | None = 224
    output: FrameOutput = "uint8"
    #: Decompression-bomb guard: images with more pixels raise ``TaliImageError``.
    max_pixels: int = 64_000_000
    #: JPEGs with more scans are refused before decoding (decode time is linear in scans).
    max_jpeg_scans: int = 64
    #: Wall-clock limit for decoding one image (None: no limit).
    max_decode_seconds: float | None = 10.0

    def __post_init__(self) -> None:
        if self.size is not None and (not isinstance(self.size, int) or self.size < 1):
            raise TaliConfigError(f"ImageConfig.size must be an int >= 1 or None, got {self.size!r}")
        _check_choice("ImageConfig", "output", self.output, FrameOutput)
        _check_positive("ImageConfig", "max_pixels", self.max_pixels)
        _check_positive("ImageConfig", "max_jpeg_scans", self.max_jpeg_scans)
        if self.max_decode_seconds is not None:
            _check_positive("ImageConfig", "max_decode_seconds", self.max_decode_seconds)


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
    #: Subtitle YAML larger than this many UTF-8 bytes is rejected before parsing; so is
    #: one whose line texts together (aliases expanded) exceed it.
    max_subtitle_bytes: int = 4_000_000
    #: YAML nodes a subtitle document may expand to (each alias use counts its target's).
    max_subtitle_nodes: int = 500_000
    #: Alias uses a subtitle document may make.
    max_subtitle_aliases: int = 10_000
    #: Titles, descriptions and WIT texts longer than this raise ``TaliDataError``
    #: (bounds the memory a sample holds; real TALI texts are under 100k characters).
    max_text_chars: int = 1_000_000

    def __post_init__(self) -> None:
        check_language(self.language)
        _check_choice("TextConfig", "fallback", self.fallback, LanguageFallback)
        _check_choice("TextConfig", "subtitles", self.subtitles, SubtitleScope)
        _check_positive("TextConfig", "max_subtitle_bytes", self.max_subtitle_bytes)
        _check_positive("TextConfig", "max_subtitle_nodes", self.max_subtitle_nodes)
        _check_positive("TextConfig", "max_subtitle_aliases", self.max_subtitle_aliases, allow_zero=True)
        _check_positive("TextConfig", "max_text_chars", self.max_text_chars)


#: A Wikipedia language code as WIT spells them: ``en``, ``zh-TW``, ``sr-Latn``, ``be-tarask``,
#: plus Simple English (``simple``). Names such as ``"english"`` are refused.
_LANGUAGE_RE = re.compile(r"^(?:[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*|simple)$")
#: For the error message only: a few names people type instead of the code.
_LANGUAGE_NAMES = {
    "english": "en", "german": "de", "deutsch": "de", "french": "fr", "spanish": "es", "italian": "it",
    "portuguese": "pt", "dutch": "nl", "russian": "ru", "chinese": "zh", "japanese": "ja", "korean": "ko",
    "arabic": "ar", "hindi": "hi", "polish": "pl", "swedish": "sv", "turkish": "tr", "ukrainian": "uk",
    "greek": "el", "hebrew": "he", "persian": "fa", "vietnamese": "vi", "indonesian": "id",
}  # fmt: skip


def check_language(value: Any, *, owner: str = "TextConfig") -> None:
    """``None`` or a WIT (Wikipedia) language code; a name such as ``"english"`` is refused."""
    if value is None:
        return
    if not isinstance(value, str) or not _LANGUAGE_RE.match(value):
        hint = _LANGUAGE_NAMES.get(str(value).strip().lower())
        raise TaliConfigError(
            f"{owner}.language={value!r} is not a Wikipedia language code; WIT names languages by "
            f"code ('en', 'de', 'zh-TW'){f', did you mean {hint!r}?' if hint else ''} "
            f"(None returns every language)"
        )


#: Frames per second no TALI clip exceeds (YouTube serves at most 60); with it a
#: window's frame count is bounded, so ``num_frames`` far above it can only be padding.
MAX_FPS = 120


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
        seconds = self.window.seconds or self.window.nominal_clip_seconds
        most = max(32, math.ceil(seconds * MAX_FPS))
        if self.video.num_frames > most and self.wants(SubModality.YOUTUBE_CONTENT_VIDEO):
            raise TaliConfigError(
                f"VideoConfig.num_frames={self.video.num_frames} is more than a {seconds:g} s window "
                f"can hold ({most} frames at {MAX_FPS} fps; TALI clips are 25-60 fps): the rest would be "
                f"padding. Ask for fewer frames or a longer window"
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
    def from_dict(cls, data: Mapping[str, Any] | None, *, where: str = "config") -> TaliConfig:
        """A config from plain values (a pipeline file's ``config:``, the CLI's flags, the
        viewer's form): the one parser, so every entry point refuses the same things.

        Every key is checked against the fields (an unknown one is named with the allowed
        ones), lists become tuples, and every number must be finite; each failure is a
        :class:`~tali.errors.TaliConfigError` naming ``where`` and the key.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise TaliConfigError(
                f"{where} must be a mapping of TaliConfig fields, got {type(data).__name__}"
            )
        refuse_non_finite(data, where)
        allowed = ["modalities", "seed", *_CONFIG_PARTS]
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in allowed:
                raise TaliConfigError(
                    f"{where}: argument {key!r} is not allowed; choose from {', '.join(allowed)}"
                )
            if key in _CONFIG_PARTS:
                kwargs[key] = build_dataclass(_CONFIG_PARTS[key], value, f"{where}.{key}")
            elif key == "modalities":
                if isinstance(value, str):
                    value = [m.strip() for m in value.split(",") if m.strip()]
                if not isinstance(value, list | tuple):
                    raise TaliConfigError(f"{where}.modalities must be a list of names, got {value!r}")
                kwargs[key] = tuple(value)
            else:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise TaliConfigError(f"{where}.seed must be an int, got {value!r}")
                kwargs[key] = value
        try:
            return cls(**kwargs)
        except TaliConfigError as exc:
            raise TaliConfigError(f"{where}: {exc}") from None

    @classmethod
    def for_modalities(cls, modalities: Iterable[str | Modality | SubModality], **kwargs: Any) -> TaliConfig:
        return cls(modalities=tuple(modalities), **kwargs)  # type: ignore[arg-type]  # normalised in __post_init__


_CONFIG_PARTS: dict[str, type] = {
    "window": WindowConfig,
    "video": VideoConfig,
    "audio": AudioConfig,
    "image": ImageConfig,
    "text": TextConfig,
}


def refuse_non_finite(value: Any, where: str) -> None:
    """Raise :class:`TaliConfigError` naming the key of any NaN or infinite number in ``value``
    (nested mappings and lists walked): no config field means anything by them."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise TaliConfigError(f"{path}={item!r} is not a finite number")
        if isinstance(item, Mapping):
            stack.extend((f"{path}.{k}", v) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))


def build_dataclass(cls: type, args: Any, where: str) -> Any:
    """``cls(**args)`` for a frozen config dataclass from plain values: unknown keys named with
    the allowed ones, lists as tuples, any failure a :class:`TaliConfigError` naming ``where``."""
    if args is None:
        return cls()
    if not isinstance(args, Mapping):
        raise TaliConfigError(f"{where} must be a mapping of {cls.__name__} fields, got {args!r}")
    allowed = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
    for key in args:
        if key not in allowed:
            raise TaliConfigError(
                f"{where}: argument {key!r} is not allowed; choose from {', '.join(allowed)}"
            )
    refuse_non_finite(args, where)
    values = {k: tuple(v) if isinstance(v, list) and k != "modalities" else v for k, v in args.items()}
    try:
        return cls(**values)
    except TaliConfigError as exc:
        raise TaliConfigError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise TaliConfigError(f"{where}: {exc}") from None
