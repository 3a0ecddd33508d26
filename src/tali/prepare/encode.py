"""Re-encode one clip for random-window training, keeping its timeline.

A demux pre-pass plans the video timeline (:mod:`tali.prepare.timeline`: kept
frames, their durations, the forced keyframes); then one decode pass over the
source: video frames are turned upright if the source is display-rotated, scaled
in swscale straight to ``yuv420p`` at the output size and encoded with libx264
(IDR frames where planned: every ``keyframe_seconds`` and the loader's thumbnail);
audio is downmixed and resampled once to mono at the training rate and encoded.
Timestamps are carried, not regenerated, so clip time is unchanged: the output's
first video frame is at 0 (the source's first video timestamp becomes 0), every
kept frame keeps its time, and audio that starts late keeps its offset. Audio
before the first video frame (negative clip time) is cut, as no window can reach it.
"""

from __future__ import annotations

import functools
import io
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.container
import numpy as np
from av.video.reformatter import VideoReformatter

from tali.decode.audio import decode_audio_window
from tali.decode.clip import Clip, decode_errors, open_clip
from tali.decode.index import frames_between
from tali.decode.video import decode_frames_at, to_rgb
from tali.errors import TaliDecodeError
from tali.prepare.settings import PrepareSettings
from tali.prepare.timeline import Timeline, loader_view, plan_timeline

__all__ = ["MAX_COLOUR_SHIFT", "Reencoded", "colour_shift", "output_size", "reencode", "reencode_clip"]

_FIELD = "youtube_video_content"


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(width, height)`` with the short side at ``short_side`` (never upscaled), both even."""
    side = min(width, height)
    scale = min(1.0, short_side / side)

    def even(x: float) -> int:
        return max(2, round(x / 2) * 2)

    return even(width * scale), even(height * scale)


def _video_stream(
    out: av.container.OutputContainer, clip: Clip, settings: PrepareSettings, timeline: Timeline
):
    info = clip.info
    fps = min(info.fps, settings.max_fps)
    rate = Fraction(fps).limit_denominator(1001)
    stream: Any = out.add_stream("libx264", rate=rate)
    # The picture is stored upright (the rotation applied to the pixels, no display matrix):
    # the short side is the displayed one.
    upright = (info.height, info.width) if timeline.rotation in (90, 270) else (info.width, info.height)
    stream.width, stream.height = output_size(*upright, settings.short_side)
    stream.pix_fmt = "yuv420p"
    # The source's time base: every kept frame keeps its exact timestamp.
    stream.codec_context.time_base = timeline.time_base
    # Keyframes are forced on clip time (``Timeline.keyframes``); x264's own interval is
    # only a backstop, twice as long, so it never adds one next to a forced one (30 fps
    # clips on 1/1000 s ticks fit 31 frames in some seconds).
    gop = str(2 * max(1, round(settings.keyframe_seconds * fps)))
    options: dict[str, Any] = {
        "preset": settings.preset,
        "crf": str(settings.crf),
        "g": gop,
        "keyint_min": gop,
        "sc_threshold": "0",
        "bf": str(settings.bframes),
        "forced-idr": "1",  # a forced keyframe is an IDR frame (a closed GOP), never a plain I
    }
    if settings.bframes:
        # A fixed B-frame run that nothing refers to: the loader leaves out the packets of
        # the B-frames it does not show (tali.decode.h264), so a window decodes its
        # reference frames and the wanted ones only.
        options["x264-params"] = "b-pyramid=none:b-adapt=0"
    if settings.fastdecode:
        options["tune"] = "fastdecode"
    stream.options = options
    stream.codec_context.thread_count = 1  # one process per core does the parallelism
    return stream


def _audio_stream(out: av.container.OutputContainer, settings: PrepareSettings):
    stream: Any = out.add_stream(settings.audio_codec, rate=settings.audio_rate)
    stream.layout = "mono"
    if settings.audio_codec != "flac":
        stream.bit_rate = settings.audio_bitrate
    stream.codec_context.time_base = Fraction(1, settings.audio_rate)
    return stream


@functools.cache
def encoder_delay(codec: str, rate: int) -> int:
    """Samples an audio encoder puts before the first one it is given (AAC's 1024 of priming),
    measured once per process by encoding silence: the first packet starts this much early."""
    out = av.open(io.BytesIO(), "w", format="mp4")
    try:
        stream: Any = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        stream.codec_context.time_base = Fraction(1, rate)
        size = stream.codec_context.frame_size or 1024
        first: int | None = None
        for k in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, size), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, 10 * size + k * size, Fraction(1, rate)
            for packet in stream.encode(frame):
                first = packet.pts if first is None else first
        for packet in stream.encode(None):
            first = packet.pts if first is None else first
        return max(0, 10 * size - (first if first is not None else 10 * size))
    finally:
        out.close()


class _AudioOut:
    """The loader's own audio of the clip (:func:`~tali.decode.audio.decode_audio_window`
    over ``[0, end)``: mono at the training rate, every sample placed by the source's
    timestamps), encoded from its first real sample to its last.

    Placed by timestamps, not by counting decoded samples from the first packet: a
    fragmented mp4 (no edit list: the AAC priming is a decoded frame) put every window's
    audio 43.4 ms early when counted. Cut where the source's audio stops, so the
    prepared copy has no valid samples the original lacks (37-740 extra before, on very
    short clips and audio shorter than the video).
    """

    def __init__(self, out, stream, settings: PrepareSettings, clip: Clip, end_seconds: float) -> None:
        self.out, self.stream, self.rate = out, stream, settings.audio_rate
        self.frame_size = stream.codec_context.frame_size or 1024
        window = decode_audio_window(clip, 0.0, end_seconds, self.rate)
        filled = window.filled if window.filled is not None else np.ones(window.samples.size, bool)
        real = np.flatnonzero(filled)
        lo, hi = (int(real[0]), int(real[-1]) + 1) if real.size else (0, 0)
        if lo > 0:
            # The encoder's priming would start the stream ``delay`` samples early (a late
            # audio start moving 64 ms earlier for AAC at 16 kHz; at clip time 0 the mp4
            # edit list hides it). Skipping that many samples keeps the stream's start and
            # every later sample's time; what is lost is the first ``delay`` samples.
            lo = min(lo + encoder_delay(settings.audio_codec, self.rate), hi)
        self.samples = np.ascontiguousarray(window.samples[lo:hi], dtype=np.float32)
        self.first = lo  # output samples: clip time * rate
        self.pos = 0

    def until(self, seconds: float | None) -> None:
        """Encode the frames that start before ``seconds`` of clip time (``None``: all)."""
        limit = None if seconds is None else seconds * self.rate
        while self.pos < self.samples.size and (limit is None or self.first + self.pos < limit):
            chunk = self.samples[self.pos : self.pos + self.frame_size]
            frame = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = self.rate, self.first + self.pos
            frame.time_base = Fraction(1, self.rate)
            self.pos += chunk.size
            self._encode(frame)

    def _encode(self, frame: av.AudioFrame | None) -> None:
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def finish(self) -> None:
        self.until(None)
        self._encode(None)


@dataclass(frozen=True)
class _Colour:
    """The source's colour description, carried to the output (H.264 VUI tags)."""

    matrix: int  # swscale's YUV matrix (``av.video.reformatter.Colorspace``)
    colorspace: int  # AVColorSpace, AVColorPrimaries, AVColorTransferCharacteristic
    primaries: int
    trc: int
    full_range: bool

    @classmethod
    def of(cls, stream: Any) -> _Colour:
        ctx = stream.codec_context
        colorspace = int(ctx.colorspace or 2)
        full = int(ctx.color_range or 0) == 2 or str(ctx.pix_fmt or "").startswith("yuvj")
        return cls(
            matrix=_MATRIX.get(colorspace, _BT601),
            colorspace=colorspace,
            primaries=int(ctx.color_primaries or 2),
            trc=int(ctx.color_trc or 2),
            full_range=full,
        )

    def source_range(self, frame: av.VideoFrame) -> str:
        full = self.full_range or int(frame.color_range or 0) == 2
        return "JPEG" if full else "MPEG"

    def tag(self, stream: Any) -> None:
        ctx = stream.codec_context
        ctx.colorspace, ctx.color_primaries, ctx.color_trc = self.colorspace, self.primaries, self.trc
        ctx.color_range = 1  # limited (AVCOL_RANGE_MPEG): what swscale writes here


#: AVColorSpace -> swscale's matrix (``Colorspace``: the same numbers): BT.709, FCC, BT.470BG
#: and SMPTE 170M (both BT.601), SMPTE 240M, BT.2020; anything else (unspecified: 2) is read
#: as BT.601, as the loader reads it.
_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
_BT601 = 5


@dataclass(frozen=True)
class Reencoded:
    """A re-encoded clip: mp4 bytes and what prepare did to it."""

    data: bytes
    #: Video frames written (after the frame-rate cap).
    frames: int
    #: Counter-clockwise degrees the source's display matrix turned its frames: applied
    #: to the pixels (the output is stored upright, without a display matrix). 0: none.
    rotation: int
    #: Clip time of the frame the loader shows as the thumbnail: an IDR frame.
    thumbnail_seconds: float


def reencode_clip(data: bytes, settings: PrepareSettings, *, item_idx: int | None = None) -> bytes:
    """The clip re-encoded to ``settings``: mp4 bytes (see :func:`reencode`)."""
    return reencode(data, settings, item_idx=item_idx).data


def reencode(data: bytes, settings: PrepareSettings, *, item_idx: int | None = None) -> Reencoded:
    """The clip re-encoded to ``settings``: H.264 + (if the source has audio) mono audio.

    The timeline is planned first (:func:`~tali.prepare.timeline.plan_timeline`), then
    the clip encoded on it, then the loader's reading of the output (its end and its
    thumbnail frame, :func:`~tali.prepare.timeline.loader_view`) checked against the
    plan. If it differs, the clip is encoded once more, with the fix for what differed
    (a keyframe on the frame picked; the last frame made an IDR frame to keep its
    duration); if it still differs, the row fails.

    Raises :class:`~tali.errors.TaliDecodeError` (naming ``item_idx``) when the
    source cannot be decoded or yields no video frame.
    """
    deadline = time.monotonic() + settings.max_decode_seconds
    thumbnail: int | None = None
    key_last = False
    for attempt in range(2):
        with open_clip(data, item_idx=item_idx, max_seconds=_left(deadline, item_idx)) as probe:
            timeline = plan_timeline(probe, settings, thumbnail=thumbnail, key_last=key_last)
        buffer = io.BytesIO()
        with (
            open_clip(data, item_idx=item_idx, max_seconds=_left(deadline, item_idx)) as clip,
            decode_errors(item_idx, what="re-encode"),
            av.open(buffer, "w", format="mp4") as out,
        ):
            frames = _transcode(clip, out, settings, timeline)
        if frames == 0:
            raise TaliDecodeError("clip has no decodable video frames", item_idx=item_idx, field=_FIELD)
        result = buffer.getvalue()
        view = loader_view(result, item_idx=item_idx)
        tb = timeline.time_base
        end_ok = view.end == timeline.end * tb
        thumbnail_ok = view.thumbnail_is_keyframe and view.thumbnail == timeline.thumbnail * tb
        if end_ok and thumbnail_ok:
            shift = colour_shift(data, result, item_idx=item_idx)
            if shift > MAX_COLOUR_SHIFT:
                raise TaliDecodeError(
                    f"the re-encoded clip's colours differ from the source's by {shift:.1f} levels "
                    f"(a channel's mean over the first frame; at most {MAX_COLOUR_SHIFT:g})",
                    item_idx=item_idx,
                    field=_FIELD,
                )
            return Reencoded(result, frames, timeline.rotation, float(view.thumbnail))
        if attempt:
            break
        key_last = not end_ok
        # With the end fixed the planned middle holds; else the loader picked another frame.
        ticks = view.thumbnail / tb
        if end_ok and ticks.denominator == 1 and int(ticks) in set(timeline.pts.tolist()):
            thumbnail = int(ticks)
    if not end_ok:
        problem = (
            f"ends at {float(view.end):g} s, not where the source does ({timeline.seconds(timeline.end):g} s)"
        )
    else:
        problem = f"shows a thumbnail frame that is not a keyframe (clip time {float(view.thumbnail):g} s)"
    raise TaliDecodeError(f"the re-encoded clip {problem}", item_idx=item_idx, field=_FIELD)


#: Largest change of a colour channel's mean (levels of 255) over the first frame, loader's
#: RGB of the output against the source's at 64 px. Measured on the sample's colour-tagged
#: clips: 0.05-1.5 with the colour carried; 4.2 for a BT.709 source written untagged.
MAX_COLOUR_SHIFT = 3.0


def colour_shift(source: bytes, output: bytes, *, item_idx: int | None = None) -> float:
    """How far the output's colours moved from the source's: the largest difference of a
    channel's mean over the first frame, as the loader converts each (64 px, display
    orientation). Compression moves it little; a wrong matrix or range moves it by levels."""
    means = []
    for data in (source, output):
        with open_clip(data, item_idx=item_idx) as clip:
            frames = frames_between(clip, 0.0, 1e-3)
            first = frames.in_window(0.0, 1e-3)[:1]
            if not first.size:
                return 0.0
            pixels = decode_frames_at(clip, frames, first, size=64).pixels[0]
        means.append(pixels.reshape(3, -1).mean(axis=1))
    return float(np.abs(means[0] - means[1]).max())


def _left(deadline: float, item_idx: int | None) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TaliDecodeError(
            "re-encoding took longer than the per-row limit", item_idx=item_idx, field=_FIELD
        )
    return left


def _transcode(
    clip: Clip, out: av.container.OutputContainer, settings: PrepareSettings, timeline: Timeline
) -> int:
    """One demux pass: the planned video frames and all audio into ``out``; returns the frame count."""
    src_video = clip.video
    src_video.codec_context.thread_count = 1
    origin = timeline.origin
    video = _video_stream(out, clip, settings, timeline)
    audio = (
        _AudioOut(out, _audio_stream(out, settings), settings, clip, timeline.seconds(timeline.end))
        if clip.audio
        else None
    )
    if audio is not None:  # it seeked: the video pass starts from the top
        clip.container.seek(origin, stream=src_video, backward=True, any_frame=False)
    colour = _Colour.of(src_video)
    colour.tag(video)
    width, height = video.width, video.height
    durations = dict(zip(timeline.pts.tolist(), timeline.durations.tolist()))
    keyframes = timeline.keyframes
    last: int | None = None
    # One scaler for the clip: frame.reformat() rebuilds its SwsContext every call (measured
    # 30% of the whole re-encode on 640x360 -> 456x256).
    scaler = VideoReformatter()
    frames = 0

    def mux(packets) -> None:
        for packet in packets:
            # The planned duration: the last frame's makes the output end where the source does.
            if packet.pts is not None and packet.pts in durations:
                packet.duration = durations[packet.pts]
            out.mux(packet)

    for packet in clip.container.demux(src_video):
        clip.deadline.check()
        for frame in packet.decode():
            if not isinstance(frame, av.VideoFrame) or frame.pts is None:
                continue
            pts = frame.pts - origin
            # Only the planned frames, each once and in order (a frame the packets did not
            # list could never be served by the loader, which plans on packet timestamps).
            if pts not in durations or (last is not None and pts <= last):
                continue
            last = pts
            source_range = colour.source_range(frame)
            if timeline.rotation:
                # The loader's own rotation (to_rgb, display orientation), then back to YUV.
                upright = to_rgb(frame, None, "bicubic", rotate=True)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(upright.transpose(1, 2, 0)), "rgb24")
                source_range = "JPEG"  # RGB is full range
            # The source's matrix, its range read, limited range written and tagged: the
            # loader converts the output exactly as it converts the source (untagged, a
            # BT.709 or full-range source was read as BT.601 limited: up to 50 levels off).
            scaled = scaler.reformat(
                frame,
                width=width,
                height=height,
                format="yuv420p",
                interpolation="AREA",
                src_colorspace=colour.matrix,
                dst_colorspace=colour.matrix,
                src_color_range=source_range,
                dst_color_range="MPEG",
                threads=1,
            )
            scaled.pts = pts
            scaled.time_base = timeline.time_base
            scaled.pict_type = (
                av.video.frame.PictureType.I if pts in keyframes else av.video.frame.PictureType.NONE
            )
            mux(video.encode(scaled))
            frames += 1
            if audio is not None:
                audio.until(timeline.seconds(pts))
    if frames:
        mux(video.encode(None))
        if audio is not None:
            audio.finish()
    return frames
