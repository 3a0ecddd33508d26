"""One pass over a whole clip: every video frame and audio sample is decoded once.

Validation uses the pass to prove the streams decode end to end; metrics
read their statistics from the same pass, so a row is never decoded twice.
Video frames are reduced to a small grey thumbnail (the Y plane sampled on
a grid, about ``THUMB_WIDTH`` wide) before any numpy work, so the scan costs
little more than H.264 decoding itself (see ``benchmarks/quality``).

A :class:`~tali.decode.clip.Deadline` bounds the wall-clock time of one row: a hostile clip
(absurd frame counts, broken timestamps that defeat seeking) raises a
located ``TaliDecodeError`` instead of stalling a worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import av
import numpy as np

from tali.decode.clip import Clip, Deadline, decode_errors
from tali.errors import TaliDecodeError

__all__ = ["AudioScan", "ClipScan", "Deadline", "ScanThresholds", "VideoScan", "scan_clip"]

#: About the width of the grey thumbnail frozen/black tests look at. Frozen
#: frames in an encoded stream differ from their predecessor by < 0.1 grey
#: levels here, moving ones by ~10 (sample dataset, 2 px/frame scroll).
THUMB_WIDTH = 64


@dataclass(frozen=True, kw_only=True)
class ScanThresholds:
    """What counts as frozen, black, silent or clipped (defaults follow FFmpeg's
    ``freezedetect``/``blackdetect``/``silencedetect`` spirit, on thumbnails)."""

    #: Mean absolute grey difference (0-255) below which a frame repeats the previous one.
    frozen_mean_abs_diff: float = 1.0
    #: A frame is black when this fraction of its pixels is darker than ``black_pixel_level``.
    black_pixel_fraction: float = 0.98
    black_pixel_level: int = 32
    #: An audio frame (~20 ms) is silent when its RMS is below this (dBFS).
    silence_dbfs: float = -50.0
    #: A sample is clipped at or above this magnitude (full scale = 1.0).
    clip_level: float = 0.999


@dataclass(frozen=True)
class VideoScan:
    """Video statistics in stream seconds (``first_seconds`` is the first frame's time)."""

    frames: int
    first_seconds: float
    end_seconds: float  # last frame time + one frame
    fps: float
    width: int
    height: int
    frozen_frames: int
    black_frames: int

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.first_seconds


@dataclass(frozen=True)
class AudioScan:
    first_seconds: float
    end_seconds: float
    sample_rate: int
    channels: int
    samples: int  # per channel
    rms_dbfs: float
    silence_ratio: float
    clipping_ratio: float

    @property
    def duration_seconds(self) -> float:
        return self.end_seconds - self.first_seconds


@dataclass(frozen=True)
class ClipScan:
    video: VideoScan
    audio: AudioScan | None


def _dbfs(mean_square: float) -> float:
    return 10.0 * math.log10(mean_square) if mean_square > 0 else -math.inf


def _frame_time(frame: av.frame.Frame) -> float | None:
    ts = frame.pts if frame.pts is not None else getattr(frame, "dts", None)
    base = frame.time_base
    return None if ts is None or base is None else float(ts * base)


_PLANAR_YUV = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "gray"}


def _luma_thumbnail(frame: av.VideoFrame, thumb_h: int) -> np.ndarray:
    """A small grey view of the frame. For planar YUV (all of TALI) this is the Y
    plane sampled on a grid: no conversion at all. Swscaling each frame to a
    64-wide grey image instead made the whole metrics pass 2.3-2.6x slower
    (``benchmarks/quality/bench_quality.py``, ``swscale_over_metrics_ratio``)."""
    if frame.format.name in _PLANAR_YUV:
        plane = frame.planes[0]
        luma = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)[
            : frame.height, : frame.width
        ]
        step_x = max(1, frame.width // THUMB_WIDTH)
        step_y = max(1, frame.height // thumb_h)
        return luma[::step_y, ::step_x]
    return frame.reformat(width=THUMB_WIDTH, height=thumb_h, format="gray").to_ndarray()


def _scan_video(clip: Clip, th: ScanThresholds, deadline: Deadline, stats: bool) -> VideoScan:
    info = clip.info
    thumb_h = max(2, round(THUMB_WIDTH * info.height / info.width) // 2 * 2)
    first = last = None
    frames = frozen = black = 0
    prev: np.ndarray | None = None
    clip.container.seek(clip.info.video_origin_ticks, stream=clip.video, backward=True)  # 1st decodable
    for frame in clip.container.decode(clip.video):
        deadline.check()
        t = _frame_time(frame)
        if t is not None:
            first = t if first is None else min(first, t)
            last = t if last is None else max(last, t)
        frames += 1
        if not stats:
            continue
        grey = _luma_thumbnail(frame, thumb_h)
        is_black = (grey < th.black_pixel_level).mean() >= th.black_pixel_fraction
        black += int(is_black)
        if (
            prev is not None
            and not is_black
            and np.abs(grey.astype(np.int16) - prev).mean() < th.frozen_mean_abs_diff
        ):
            frozen += 1
        prev = grey.astype(np.int16)
    if frames == 0 or first is None or last is None:
        raise TaliDecodeError(
            "video stream has no decodable frames", item_idx=clip.item_idx, field="youtube_video_content"
        )
    return VideoScan(
        frames=frames,
        first_seconds=first,
        end_seconds=last + 1.0 / info.fps,
        fps=info.fps,
        width=info.width,
        height=info.height,
        frozen_frames=frozen,
        black_frames=black,
    )


def _scan_audio(clip: Clip, th: ScanThresholds, deadline: Deadline) -> AudioScan:
    stream = clip.audio
    assert stream is not None
    rate = stream.codec_context.sample_rate or 0
    # Float, interleaved, same rate and layout: clipping is judged on the stream's own samples.
    resampler = av.AudioResampler(format="flt")
    first = end = None
    total = silent = clipped = values = 0
    square_sum = 0.0
    channels = 0

    def account(frames: list[av.AudioFrame]) -> None:
        nonlocal first, end, total, silent, clipped, values, square_sum, channels
        for frame in frames:
            data = frame.to_ndarray().reshape(-1).astype(np.float64)
            channels = max(len(frame.layout.channels), 1)
            n = data.size // channels
            if n == 0:
                continue
            t = _frame_time(frame)
            if t is not None:
                first = t if first is None else min(first, t)
                end = max(end or 0.0, t + n / frame.sample_rate)
            mono = data.reshape(n, channels).mean(axis=1)
            mean_square = float(np.mean(mono * mono))
            total += n
            square_sum += mean_square * n
            silent += n if _dbfs(mean_square) < th.silence_dbfs else 0
            clipped += int(np.count_nonzero(np.abs(data) >= th.clip_level))
            values += data.size

    clip.container.seek(0, stream=stream, backward=True)
    for frame in clip.container.decode(stream):
        deadline.check()
        account(resampler.resample(frame))
    account(resampler.resample(None))
    if total == 0 or first is None or end is None:
        raise TaliDecodeError(
            "audio stream has no decodable samples", item_idx=clip.item_idx, field="youtube_video_content"
        )
    return AudioScan(
        first_seconds=first,
        end_seconds=end,
        sample_rate=rate,
        channels=channels,
        samples=total,
        rms_dbfs=_dbfs(square_sum / total),
        silence_ratio=silent / total,
        clipping_ratio=clipped / values,
    )


def scan_clip(
    clip: Clip,
    *,
    thresholds: ScanThresholds | None = None,
    deadline: Deadline | None = None,
    stats: bool = True,
) -> ClipScan:
    """Decode every frame of the clip's first video and audio streams.

    ``stats=False`` only proves the streams decode (validation); the frame
    statistics are then zero. Raises ``TaliDecodeError`` naming the row.
    """
    th = thresholds or ScanThresholds()
    deadline = deadline or clip.deadline
    with decode_errors(clip.item_idx, what="scan"):
        video = _scan_video(clip, th, deadline, stats)
        audio = _scan_audio(clip, th, deadline) if clip.audio is not None else None
    return ClipScan(video=video, audio=audio)
