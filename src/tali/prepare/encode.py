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

from tali.decode.clip import Clip, decode_errors, open_clip
from tali.decode.video import to_rgb
from tali.errors import TaliDecodeError
from tali.prepare.settings import PrepareSettings
from tali.prepare.timeline import Timeline, loader_view, plan_timeline

__all__ = ["Reencoded", "output_size", "reencode", "reencode_clip"]

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
    """Source audio frames -> mono at the training rate, placed on clip time, in encoder-sized frames."""

    def __init__(self, out, stream, settings: PrepareSettings, video_start: float) -> None:
        self.out, self.stream, self.rate = out, stream, settings.audio_rate
        self.video_start = video_start
        self.resampler = av.AudioResampler(format="fltp", layout="mono", rate=self.rate)
        self.fifo = av.AudioFifo()
        self.next_pts: int | None = None  # output samples: clip time * rate
        self.frame_size = stream.codec_context.frame_size or 1024
        # The encoder's priming would start the stream ``delay`` samples early (a late
        # audio start moving 64 ms earlier for AAC at 16 kHz; at clip time 0 the mp4 edit
        # list hides it). Skipping that many samples keeps the stream's start and every
        # later sample's time; what is lost is the first ``delay`` samples of the stream.
        self.skip = encoder_delay(settings.audio_codec, self.rate)

    def add(self, frame: av.AudioFrame) -> None:
        if self.next_pts is None:
            if frame.pts is None:
                raise TaliDecodeError("audio frame without a timestamp", field=_FIELD)
            start = float(frame.pts * (frame.time_base or 0)) - self.video_start
            self.next_pts = round(start * self.rate)
            if self.next_pts <= 0:
                self.skip = 0
        for mono in self.resampler.resample(frame):
            self._push(mono)

    def _push(self, mono: av.AudioFrame) -> None:
        mono.pts = None  # the fifo keeps the samples contiguous; we place them
        self.fifo.write(mono)
        self._drain(final=False)

    def _drain(self, *, final: bool) -> None:
        while self.fifo.samples >= self.frame_size or (final and self.fifo.samples):
            chunk = self.fifo.read(min(self.frame_size, self.fifo.samples) if final else self.frame_size)
            if chunk is None:
                break
            assert self.next_pts is not None
            drop = max(-self.next_pts, 0) + self.skip  # before clip time 0: no window reaches it
            if drop:
                keep = chunk.samples - drop
                if keep <= 0:
                    self.skip -= min(self.skip, chunk.samples)
                    self.next_pts += chunk.samples
                    continue
                data = chunk.to_ndarray()[:, -keep:]
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(data, dtype=np.float32), format="fltp", layout="mono"
                )
                chunk.sample_rate = self.rate
                self.next_pts += drop
                self.skip = 0
            chunk.pts = self.next_pts
            chunk.time_base = Fraction(1, self.rate)
            self.next_pts += chunk.samples
            self._encode(chunk)

    def _encode(self, frame: av.AudioFrame | None) -> None:
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def finish(self) -> None:
        if self.next_pts is not None:
            for mono in self.resampler.resample(None):
                mono.pts = None
                self.fifo.write(mono)
            self._drain(final=True)
        self._encode(None)


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
        _AudioOut(out, _audio_stream(out, settings), settings, timeline.seconds(origin))
        if clip.audio
        else None
    )
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

    streams = [src_video] + ([clip.audio] if clip.audio else [])
    for packet in clip.container.demux(*streams):
        clip.deadline.check()
        if packet.stream.type == "audio":
            if audio is not None:
                for frame in packet.decode():
                    if isinstance(frame, av.AudioFrame):
                        audio.add(frame)
            continue
        for frame in packet.decode():
            if not isinstance(frame, av.VideoFrame) or frame.pts is None:
                continue
            pts = frame.pts - origin
            # Only the planned frames, each once and in order (a frame the packets did not
            # list could never be served by the loader, which plans on packet timestamps).
            if pts not in durations or (last is not None and pts <= last):
                continue
            last = pts
            if timeline.rotation:
                # The loader's own rotation (to_rgb, display orientation), then back to YUV.
                upright = to_rgb(frame, None, "bicubic", rotate=True)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(upright.transpose(1, 2, 0)), "rgb24")
            scaled = scaler.reformat(
                frame, width=width, height=height, format="yuv420p", interpolation="AREA", threads=1
            )
            scaled.pts = pts
            scaled.time_base = timeline.time_base
            scaled.pict_type = (
                av.video.frame.PictureType.I if pts in keyframes else av.video.frame.PictureType.NONE
            )
            mux(video.encode(scaled))
            frames += 1
    if frames:
        mux(video.encode(None))
        if audio is not None:
            audio.finish()
    return frames
