"""Re-encode one clip for random-window training, keeping its timeline.

One demux pass over the source: video frames are scaled in swscale straight to
``yuv420p`` at the output size and encoded with libx264 (a keyframe every
``keyframe_seconds``); audio is downmixed and resampled once to mono at the
training rate and encoded. Timestamps are carried, not regenerated, so clip
time is unchanged: the output's first video frame is at 0 (the source's first
video timestamp becomes 0), every kept frame keeps its time, and audio that
starts late keeps its offset. Audio before the first video frame (negative
clip time) is cut, as no window can reach it.
"""

from __future__ import annotations

import functools
import io
from fractions import Fraction
from typing import Any

import av
import av.container
import numpy as np
from av.video.reformatter import VideoReformatter

from tali.decode.clip import Clip, decode_errors, open_clip
from tali.decode.video import rotation_of
from tali.errors import TaliDecodeError
from tali.prepare.settings import PrepareSettings

__all__ = ["output_size", "reencode_clip"]

_FIELD = "youtube_video_content"


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """``(width, height)`` with the short side at ``short_side`` (never upscaled), both even."""
    side = min(width, height)
    scale = min(1.0, short_side / side)

    def even(x: float) -> int:
        return max(2, round(x / 2) * 2)

    return even(width * scale), even(height * scale)


def _video_stream(out: av.container.OutputContainer, clip: Clip, settings: PrepareSettings):
    info = clip.info
    fps = min(info.fps, settings.max_fps)
    rate = Fraction(fps).limit_denominator(1001)
    stream: Any = out.add_stream("libx264", rate=rate)
    stream.width, stream.height = output_size(info.width, info.height, settings.short_side)
    stream.pix_fmt = "yuv420p"
    # The source's time base: every kept frame keeps its exact timestamp.
    stream.codec_context.time_base = clip.video.time_base
    gop = str(max(1, round(settings.keyframe_seconds * fps)))
    options: dict[str, Any] = {
        "preset": settings.preset,
        "crf": str(settings.crf),
        "g": gop,
        "keyint_min": gop,
        "sc_threshold": "0",
        "bf": str(settings.bframes),
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
    return stream, fps


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


def reencode_clip(data: bytes, settings: PrepareSettings, *, item_idx: int | None = None) -> bytes:
    """The clip re-encoded to ``settings``: mp4 bytes, H.264 + (if the source has audio) mono audio.

    Raises :class:`~tali.errors.TaliDecodeError` (naming ``item_idx``) when the
    source cannot be decoded or yields no video frame.
    """
    buffer = io.BytesIO()
    with (
        open_clip(data, item_idx=item_idx, max_seconds=settings.max_clip_seconds) as clip,
        decode_errors(item_idx, what="re-encode"),
        av.open(buffer, "w", format="mp4") as out,
    ):
        frames = _transcode(clip, out, settings)
    if frames == 0:
        raise TaliDecodeError("clip has no decodable video frames", item_idx=item_idx, field=_FIELD)
    return buffer.getvalue()


def _transcode(clip: Clip, out: av.container.OutputContainer, settings: PrepareSettings) -> int:
    """One demux pass: every kept video frame and all audio into ``out``; returns the frame count."""
    src_video = clip.video
    src_video.codec_context.thread_count = 1
    video_start_ts = src_video.start_time or 0
    src_time_base = src_video.time_base or Fraction(1, 90_000)
    video_start = float(video_start_ts * src_time_base)
    video, fps = _video_stream(out, clip, settings)
    audio = _AudioOut(out, _audio_stream(out, settings), settings, video_start) if clip.audio else None
    width, height = video.width, video.height
    min_step = 1.0 / fps - 1e-6  # seconds between kept frames (the fps cap)
    time_base = float(src_time_base)
    last_kept: float | None = None
    # One scaler for the clip: frame.reformat() rebuilds its SwsContext every call (measured
    # 30% of the whole re-encode on 640x360 -> 456x256).
    scaler = VideoReformatter()
    frames = 0
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
            if frames == 0 and rotation_of(frame):
                # The display matrix is not carried to the output yet: re-encoding would
                # turn the clip sideways. Refused, so the row is kept unchanged (and reported).
                raise TaliDecodeError(
                    f"clip is display-rotated by {rotation_of(frame)} degrees; prepare does not re-encode "
                    "rotated clips",
                    item_idx=clip.item_idx,
                    field=_FIELD,
                )
            t = (frame.pts - video_start_ts) * time_base
            if t < -1e-9 or (last_kept is not None and t - last_kept < min_step):
                continue
            last_kept = t
            scaled = scaler.reformat(
                frame, width=width, height=height, format="yuv420p", interpolation="AREA", threads=1
            )
            scaled.pts = frame.pts - video_start_ts
            scaled.time_base = src_video.time_base
            scaled.pict_type = av.video.frame.PictureType.NONE
            for out_packet in video.encode(scaled):
                out.mux(out_packet)
            frames += 1
    if frames:
        for out_packet in video.encode(None):
            out.mux(out_packet)
        if audio is not None:
            audio.finish()
    return frames
