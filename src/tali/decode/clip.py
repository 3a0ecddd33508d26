"""Open a clip's mp4 bytes once and describe its streams.

Every PyAV call that can fail on bad bytes runs inside :func:`decode_errors`,
so a truncated or garbage mp4 surfaces as a :class:`~tali.errors.TaliDecodeError`
naming the row and field, never as a bare FFmpeg error with no context.
"""

from __future__ import annotations

import contextlib
import functools
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Self, cast

import av
import av.container

from tali.decode.mp4 import check_mp4_counts
from tali.errors import TaliDataError, TaliDecodeError, TaliMissingStreamError
from tali.limits import ClipLimits
from tali.schema import Column

__all__ = ["Clip", "ClipInfo", "ClipLimits", "Deadline", "choose_audio_stream", "decode_errors", "open_clip"]

_FIELD = str(Column.YOUTUBE_VIDEO_CONTENT)


@contextlib.contextmanager
def decode_errors(item_idx: int | None, field: str = _FIELD, what: str = "decode") -> Iterator[None]:
    """Turn any failure inside PyAV into a located ``TaliDecodeError``."""
    try:
        yield
    except TaliDataError:
        raise
    except av.FFmpegError as exc:
        # PyAV raises FFmpeg's codes as builtin OSErrors (EPERM: PermissionError), whose
        # text reads like a file-system failure: name FFmpeg and its code instead.
        raise TaliDecodeError(
            f"cannot {what} {field}: FFmpeg failed ({exc.strerror or type(exc).__name__}, "
            f"error {exc.errno}) on this clip's media",
            item_idx=item_idx,
            field=field,
        ) from exc
    except (ValueError, OSError, EOFError, IndexError, RuntimeError, TypeError) as exc:
        raise TaliDecodeError(
            f"cannot {what} {field}: {type(exc).__name__}: {exc}", item_idx=item_idx, field=field
        ) from exc


class Deadline:
    """Wall-clock budget for decoding one row; ``check()`` raises once it is spent.

    Decoders call ``check()`` once per packet or frame, so a hostile clip (broken
    timestamps that defeat seeking, absurd frame counts) costs at most the
    budget plus one frame instead of stalling a DataLoader worker.
    """

    def __init__(self, seconds: float | None, *, item_idx: int | None, field: str = _FIELD) -> None:
        self.seconds = seconds
        self.item_idx = item_idx
        self.field = field
        self._end = None if seconds is None else time.monotonic() + seconds

    def check(self) -> None:
        if self._end is not None and time.monotonic() > self._end:
            raise TaliDecodeError(
                f"decoding took longer than the {self.seconds:g} s per-row limit",
                item_idx=self.item_idx,
                field=self.field,
            )


@dataclass(frozen=True)
class ClipInfo:
    """What the container says about a clip. Times are seconds on the clip's timeline,
    where 0 is the first video timestamp."""

    duration_seconds: float
    fps: float
    width: int
    height: int
    video_start_seconds: float
    has_audio: bool
    audio_sample_rate: int | None
    audio_channels: int | None
    #: Audio stream start minus video stream start (positive: audio starts late).
    audio_offset_seconds: float | None
    #: Stream seconds the clip's first decodable video frame follows the stream's first
    #: timestamp (0 but for a track cut mid-GOP: it starts on frames that reference a
    #: keyframe it lacks; the clip starts at its first keyframe).
    undecodable_lead_seconds: float = 0.0
    #: The clip's time 0 in video stream ticks (``video_start_seconds`` exactly).
    video_origin_ticks: int = 0
    #: Index of the audio stream decoded, in ``container.streams.audio`` (``None``: no audio).
    audio_stream_index: int | None = None


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


class Clip:
    """An opened mp4: one container shared by every output of a sample."""

    def __init__(
        self,
        container: av.container.InputContainer,
        item_idx: int | None,
        *,
        max_seconds: float | None = None,
        limits: ClipLimits | None = None,
        audio_stream: int | None = None,
    ) -> None:
        self.container = container
        self.item_idx = item_idx
        self.limits = limits = limits or ClipLimits()
        self.deadline = Deadline(max_seconds, item_idx=item_idx)
        with decode_errors(item_idx, what="probe"):
            if not container.streams.video:
                raise TaliMissingStreamError("clip has no video stream", item_idx=item_idx, field=_FIELD)
            self.video = container.streams.video[0]
            self.audio_stream_index = choose_audio_stream(container, audio_stream, item_idx=item_idx)
            audios = container.streams.audio
            self.audio = audios[self.audio_stream_index] if self.audio_stream_index is not None else None
            for stream in (self.video, self.audio):
                if stream is not None:
                    self._check_codec(stream)
            # The decoder refuses any frame over the limit, including one whose size
            # changes mid-stream from what the header said (ff_get_buffer checks it).
            self.video.codec_context.options = {"max_pixels": str(limits.max_frame_pixels)}
            self.info = self._probe()

    def _check_codec(self, stream: av.stream.Stream) -> None:
        ctx = stream.codec_context
        codec = ctx.codec.canonical_name if ctx is not None and ctx.codec is not None else None
        if codec not in self.limits.codecs:
            raise TaliDecodeError(
                f"clip's {stream.type} codec {codec!r} is not supported; "
                f"allowed: {', '.join(self.limits.codecs)}",
                item_idx=self.item_idx,
                field=_FIELD,
            )

    def _probe(self) -> ClipInfo:
        video = self.video
        for stream in (video, self.audio):
            # libavformat gives every stream it demuxes a time base; the decoders cast
            # ``time_base`` to ``Fraction`` on the strength of this check.
            if stream is not None and stream.time_base is None:
                raise TaliDecodeError(
                    f"clip's {stream.type} stream has no time base", item_idx=self.item_idx, field=_FIELD
                )
        ctx = video.codec_context
        if not ctx.width or not ctx.height or ctx.width * ctx.height > self.limits.max_frame_pixels:
            raise TaliDecodeError(
                f"video frames are {ctx.width}x{ctx.height}, over the "
                f"{self.limits.max_frame_pixels}-pixel frame limit",
                item_idx=self.item_idx,
                field=_FIELD,
            )
        rate = video.average_rate or video.base_rate or video.guessed_rate
        fps = float(rate) if rate else 0.0
        if not 0 < fps <= 1000:
            raise TaliDecodeError(f"implausible frame rate {fps}", item_idx=self.item_idx, field=_FIELD)
        origin, lead = self._first_decodable()
        start = _seconds(origin, video.time_base) or 0.0
        duration = _seconds(video.duration, video.time_base)
        if not duration or duration <= 0:
            # Some muxers leave the stream duration unset; fall back to the container's.
            duration = (self.container.duration or 0) / av.time_base
        if duration <= 0 and video.frames:
            duration = video.frames / fps
        if lead and duration > lead:
            duration -= lead  # the clip starts at its first decodable frame
        if not 0 < duration < 24 * 3600:
            raise TaliDecodeError(f"implausible duration {duration}s", item_idx=self.item_idx, field=_FIELD)
        audio = self.audio
        audio_offset = None
        if audio is not None:
            audio_start = _seconds(audio.start_time, audio.time_base)
            audio_offset = (audio_start - start) if audio_start is not None else 0.0
        return ClipInfo(
            duration_seconds=duration,
            fps=fps,
            width=ctx.width,
            height=ctx.height,
            video_start_seconds=start,
            has_audio=audio is not None,
            audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
            audio_offset_seconds=audio_offset,
            undecodable_lead_seconds=lead,
            video_origin_ticks=origin,
            audio_stream_index=self.audio_stream_index,
        )

    def _first_decodable(self) -> tuple[int, float]:
        """The clip's time 0 (video ticks) and how far it is after the stream's first
        timestamp (seconds).

        Normally the stream's start. A track copy-cut mid-GOP starts on frames predicted
        from a keyframe it lacks: no decoder shows them (FFmpeg drops them), and a seek
        to them finds no keyframe (FFmpeg fails with EPERM). Such a clip starts at its
        first keyframe; audio and subtitles keep their own times. Read from the
        container index: the first sync sample's packet (one short demux), only where
        the first sample is not one.
        """
        video = self.video
        start = int(video.start_time) if video.start_time is not None else 0
        entries = video.index_entries
        if not len(entries) or entries[0].is_keyframe:
            return start, 0.0
        if not any(e.is_keyframe for e in entries):
            raise TaliDecodeError("clip has no video keyframe", item_idx=self.item_idx, field=_FIELD)
        # From the first packet (any_frame: there is no keyframe to seek to) to the first
        # keyframe; index timestamps are decode times, and a seek to one with an edit list
        # landed past the keyframe.
        self.container.seek(int(entries[0].timestamp), stream=video, backward=True, any_frame=True)
        for packet in self.container.demux(video):
            self.deadline.check()
            if packet.size == 0:
                break
            if packet.is_keyframe and packet.pts is not None:
                origin = max(int(packet.pts), start)
                # Leave the demuxer where a reader from the top starts: at that keyframe.
                self.container.seek(origin, stream=video, backward=True, any_frame=False)
                return origin, float((origin - start) * cast(Fraction, video.time_base))
        raise TaliDecodeError("clip has no decodable video keyframe", item_idx=self.item_idx, field=_FIELD)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def choose_audio_stream(
    container: av.container.InputContainer, choice: int | None, *, item_idx: int | None = None
) -> int | None:
    """Which audio stream a clip plays (index in ``container.streams.audio``): ``choice``
    if given, else the one with the default disposition (as ffmpeg and players choose;
    mp4 writes it as the track's enabled flag), else the first. ``None``: no audio."""
    audios = container.streams.audio
    if not audios:
        return None
    if choice is not None:
        if not 0 <= choice < len(audios):
            raise TaliMissingStreamError(
                f"AudioConfig.stream={choice} but the clip has {len(audios)} audio stream(s)",
                item_idx=item_idx,
                field=_FIELD,
            )
        return choice
    default = av.stream.Disposition.default
    return next((i for i, s in enumerate(audios) if s.disposition & default), 0)


@functools.lru_cache(maxsize=8)
def _open_options(limits: ClipLimits) -> dict[str, str]:
    """Options for ``av.open``: they reach the decoders ``avformat_find_stream_info``
    opens to probe, so a disallowed codec never runs and no probe decode allocates a
    frame over the limit (a 64x64 sample entry over 16000x16000 frames allocated
    1 GB inside ``av.open``)."""
    decoders = set()
    for name in av.codecs_available:
        try:
            codec = av.Codec(name, "r")
        except (ValueError, av.FFmpegError):
            continue
        if codec.canonical_name in limits.codecs:
            decoders.add(codec.name)
    return {"codec_whitelist": ",".join(sorted(decoders)), "max_pixels": str(limits.max_frame_pixels)}


def open_clip(
    data: bytes | memoryview | None,
    *,
    item_idx: int | None = None,
    max_seconds: float | None = None,
    limits: ClipLimits | None = None,
    decoder_options: dict[str, str] | None = None,
    audio_stream: int | None = None,
) -> Clip:
    """Open mp4 bytes (never a path: a row must not make us read the local disk).

    ``max_seconds`` bounds the wall-clock time every decode on this clip may take
    (opening included); ``limits`` what the clip may hold, checked before FFmpeg
    builds anything from it. ``decoder_options`` are extra FFmpeg options of the video
    decoder (e.g. ``skip_loop_filter``), set before it opens. ``audio_stream``: which
    audio stream to decode (index among the clip's audio streams; ``None``: the one with
    the default disposition, else the first; see :func:`choose_audio_stream`).
    """
    limits = limits or ClipLimits()
    if data is None or len(data) == 0:
        raise TaliDecodeError("clip bytes are empty or null", item_idx=item_idx, field=_FIELD)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TaliDecodeError(
            f"cannot open {_FIELD}: a clip must be bytes, got {type(data).__name__}",
            item_idx=item_idx,
            field=_FIELD,
        )
    if len(data) > limits.max_bytes:
        raise TaliDecodeError(
            f"clip is {len(data)} bytes, over the {limits.max_bytes}-byte limit",
            item_idx=item_idx,
            field=_FIELD,
        )
    check_mp4_counts(data, limits, item_idx=item_idx)
    with decode_errors(item_idx, what="open"):
        container = av.open(
            io.BytesIO(data), mode="r", format="mp4", options=_open_options(limits), timeout=max_seconds
        )
    try:
        clip = Clip(container, item_idx, max_seconds=max_seconds, limits=limits, audio_stream=audio_stream)
        if decoder_options:
            clip.video.codec_context.options = {**clip.video.codec_context.options, **decoder_options}
        return clip
    except BaseException:
        container.close()
        raise
