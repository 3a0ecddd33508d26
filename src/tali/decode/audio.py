"""Cut one window of a clip's audio: mono, resampled, exactly ``round(d * sr)`` samples.

Downmixing and resampling follow FFmpeg's ``swresample``, from whatever layout
and rate the stream has: planar float (AAC, nearly every TALI clip) is
downmixed in numpy with swresample's weights and resampled with swresample's own filter as one matrix
product (``tali.decode.resample``); any other sample format goes through
``av.AudioResampler`` frame by frame.
Samples are placed by their timestamps, not by counting, so a stream that
starts late (or has a gap) lands at the right time, with zeros elsewhere.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import av
import numpy as np

from tali.decode import resample
from tali.decode.clip import Clip, decode_errors
from tali.errors import TaliMissingStreamError

__all__ = ["AudioWindow", "decode_audio_window", "silent_window"]

#: Decode from this long before the window: AAC's first frame after a seek
#: lacks the overlap of the frame before it and comes out attenuated.
_PREROLL_SECONDS = 0.1
#: Longer where a decoder needs more to converge after a seek: Opus (SILK/CELT state)
#: is 0.017 off a one-pass decode after 0.1 s, 1.7e-5 after 0.3 s.
_PREROLL_BY_CODEC = {"opus": 0.3}


@dataclass
class AudioWindow:
    """Mono float32 samples of ``[start, start + duration]`` on the clip timeline."""

    samples: np.ndarray  # float32 [round(duration * sample_rate)]
    sample_rate: int
    start_seconds: float
    #: How many samples came from the stream (the rest are zero padding).
    valid_samples: int
    #: True when the clip has no audio stream and ``samples`` are zeros.
    missing: bool = False
    #: bool ``[n]``: which samples came from the stream (``None``: not recorded).
    filled: np.ndarray | None = None

    def __repr__(self) -> str:
        return (
            f"AudioWindow(samples={self.samples.shape}, sample_rate={self.sample_rate}, "
            f"valid_samples={self.valid_samples}, missing={self.missing})"
        )


def silent_window(start: float, duration: float, sample_rate: int) -> AudioWindow:
    n = round(duration * sample_rate)
    return AudioWindow(np.zeros(n, np.float32), sample_rate, start, valid_samples=0, missing=True)


def decode_audio_window(
    clip: Clip,
    start_seconds: float,
    duration_seconds: float,
    sample_rate: int,
    *,
    downmix: str = "swresample",
) -> AudioWindow:
    """Decode ``[start, start + duration]`` (clip seconds) of the first audio stream.

    The samples equal the same span of the whole stream decoded and resampled in one
    pass, at zero lag: a run decoded after a seek is resampled on the stream's own
    output grid (``_align``), not on one that starts where the seek landed.
    ``downmix``: ``"swresample"`` (its weights: stereo is ``(L + R) * sqrt(1/2)``) or
    ``"mean"`` (the same weights scaled to sum to 1, so mono never exceeds the loudest
    channel).
    """
    if clip.audio is None:
        raise TaliMissingStreamError(
            "audio requested but the clip has no audio stream (AudioConfig(on_missing='zeros') "
            "gives silence with missing=True instead; on_error='skip' drops such rows)",
            item_idx=clip.item_idx,
            field="youtube_video_content",
        )
    window = _Window(clip, start_seconds, duration_seconds, sample_rate)
    window.mean = downmix == "mean"
    with decode_errors(clip.item_idx, what="decode audio of"):
        ctx = clip.audio.codec_context
        if ctx.format is not None and ctx.format.name == "fltp":
            try:
                _by_runs(clip, window)
            except _NotUniform:
                window.clear()
                _by_frames(clip, window)
        else:
            _by_frames(clip, window)
    window.out[window.stop :] = 0  # past the stream's end: the last frame's codec padding
    window.filled[window.stop :] = False
    return AudioWindow(
        samples=window.out,
        sample_rate=sample_rate,
        start_seconds=start_seconds,
        valid_samples=int(window.filled.sum()),
        filled=window.filled,
    )


class _Window:
    """The output buffer and the bookkeeping to place resampled audio by timestamp."""

    def __init__(self, clip: Clip, start_seconds: float, duration_seconds: float, sample_rate: int) -> None:
        self.n = round(duration_seconds * sample_rate)
        self.out = np.zeros(self.n, dtype=np.float32)
        self.filled = np.zeros(self.n, dtype=bool)
        self.sample_rate = sample_rate
        # Stream seconds of out[0], exact: the video origin in ticks plus the window start.
        origin = clip.info.video_origin_ticks * cast(Fraction, clip.video.time_base)
        self.exact_origin = origin + Fraction(start_seconds)
        self.origin = float(self.exact_origin)
        # The clip's output grid starts at the output sample nearest clip time 0, and a
        # window at ``t`` starts ``round(t * sr)`` samples after it: every window is the
        # same span of the whole clip's audio at zero lag. Rounding origin + t as one sum
        # moved the windows of a clip whose start is off the output grid (a 10 h
        # -output_ts_offset, a mid-GOP cut) one sample against the others. Half up, as
        # swresample stamps its outputs (``Polyphase.first_output_index``); exact ticks.
        half = Fraction(1, 2)
        self.first_index = math.floor(origin * sample_rate + half) + math.floor(
            Fraction(start_seconds) * sample_rate + half
        )
        # Where the stream says its audio ends (mp4: the track's duration, its edit list):
        # the decoder's last frame is padded past it (AAC: up to 1023 samples of codec
        # padding), and those samples are not the stream's.
        self.stop = self.n
        audio = clip.audio
        if audio is not None and audio.duration and audio.time_base:
            start = audio.start_time if audio.start_time is not None else 0
            end = (start + audio.duration) * Fraction(audio.time_base) * sample_rate
            self.stop = min(self.n, max(math.floor(end + Fraction(1, 2)) - self.first_index, 0))
        self.mean = False  # normalise the downmix weights to sum to 1

    def clear(self) -> None:
        self.out[:] = 0
        self.filled[:] = False

    def place(self, frames: list[av.AudioFrame], gain: float = 1.0) -> bool:
        """Copy resampled frames into ``out``; True once past the window end."""
        for frame in frames:
            if frame.pts is None:
                continue
            data = frame.to_ndarray().reshape(-1)
            if gain != 1.0:
                data = data * np.float32(gain)
            # The resampler's output time base is 1 / sample_rate: pts counts samples.
            if self.put(frame.pts, data):
                return True
        return False

    def put(self, index: int, data: np.ndarray) -> bool:
        """Copy samples whose first one is output-rate sample ``index`` of the stream;
        True once past the window end."""
        begin = index - self.first_index
        lo, hi = max(begin, 0), min(begin + data.size, self.stop)
        if hi > lo:
            self.out[lo:hi] = data[lo - begin : hi - begin]
            self.filled[lo:hi] = True
        return begin >= self.n


def _seek(clip: Clip, window: _Window) -> None:
    stream = clip.audio
    assert stream is not None
    # Not clamped at 0: an AAC stream's first packet (encoder priming) often sits at a
    # negative time; skipping it leaves the first frame without its overlap.
    preroll = Fraction(_PREROLL_BY_CODEC.get(stream.codec_context.name, _PREROLL_SECONDS))
    time_base = cast(Fraction, stream.time_base)  # checked non-None in Clip._probe
    clip.container.seek(math.floor((window.exact_origin - preroll) / time_base), stream=stream, backward=True)


def _frames(clip: Clip, window: _Window) -> Iterator[av.AudioFrame]:
    """The audio stream's decoded frames from the current position. At the stream's end the
    window stops where its last packet does (its own duration: the decoder pads the last
    AAC frame to 1024 samples; the track's duration is rounded to the movie's 1 ms)."""
    stream = cast(av.AudioStream, clip.audio)
    end = None
    for packet in clip.container.demux(stream):
        if packet.size == 0:
            if end is not None:
                index = end * cast(Fraction, stream.time_base) * window.sample_rate
                window.stop = min(
                    window.stop, max(math.floor(index + Fraction(1, 2)) - window.first_index, 0)
                )
        elif packet.pts is not None and packet.duration:
            end = max(end or packet.pts, packet.pts + packet.duration)
        # Decoding only the audio stream yields only audio frames.
        yield from cast(list[av.AudioFrame], packet.decode())


def _by_frames(clip: Clip, window: _Window) -> None:
    """Any layout and sample format: ``swresample`` downmixes and resamples frame by frame."""
    _seek(clip, window)
    resampler = resample.mono_resampler(window.sample_rate)
    gain = 1.0
    if window.mean and clip.audio is not None:
        weights = downmix_weights(clip.audio.codec_context.layout.name)
        gain = 1.0 / float(weights.sum()) if weights is not None and weights.sum() > 0 else 1.0
    first = True
    frames = _frames(clip, window)
    for frame in frames:
        clip.deadline.check()
        if first:
            first = False
            lead = _leading_silence(clip, frame, window.sample_rate)
            if lead is not None:
                window.place(resampler.resample(lead), gain)
        if window.place(resampler.resample(frame), gain):
            return
    window.place(resampler.resample(None), gain)


def _leading_silence(clip: Clip, frame: av.AudioFrame, out_rate: int) -> av.AudioFrame | None:
    """Zeros just before the first frame after a seek, so the resampler starts on the
    stream's one-pass output grid (see ``_align``); ``None`` where it already does."""
    stream = clip.audio
    polyphase = resample.polyphase(frame.sample_rate, out_rate)
    if stream is None or polyphase is None or frame.pts is None or frame.time_base is None:
        return None
    origin = stream.start_time if stream.start_time is not None else 0
    offset = (frame.pts - origin) * Fraction(frame.time_base) * frame.sample_rate
    if offset.denominator != 1 or int(offset) % polyphase.base_m == 0:
        return None
    pad = int(offset) % polyphase.base_m
    shift = Fraction(pad, frame.sample_rate) / Fraction(frame.time_base)
    if shift.denominator != 1:
        return None
    silence = av.AudioFrame(format=frame.format.name, layout=frame.layout.name, samples=pad)
    for plane in silence.planes:
        plane.update(bytes(plane.buffer_size))
    silence.sample_rate, silence.pts, silence.time_base = (
        frame.sample_rate,
        frame.pts - int(shift),
        frame.time_base,
    )
    return silence


@functools.lru_cache(maxsize=32)
def downmix_weights(layout: str) -> np.ndarray | None:
    """swresample's weight of each channel of ``layout`` in its float mono downmix;
    ``None`` where swresample cannot take that layout this way (the frame-by-frame
    path then decides what to do with it).

    Measured, not copied from its tables: one frame with a unit impulse on each
    channel at a different sample, at an unchanged rate (no filter, only the
    matrix). Stereo gives ``[sqrt(.5), sqrt(.5)]``, 5.1 drops the LFE.
    """
    try:
        channels = av.AudioLayout(layout).nb_channels
        planes = np.zeros((channels, channels + 16), np.float32)
        planes[np.arange(channels), np.arange(channels)] = 1.0  # channel c is 1 at sample c
        # Not AudioFrame.from_ndarray: PyAV 18 lists a ninth plane for 8 channels and fails.
        frame = av.AudioFrame(format="fltp", layout=layout, samples=planes.shape[1])
        for plane, values in zip(frame.planes, planes):
            plane.update(values.tobytes())
        frame.sample_rate, frame.pts = 48_000, 0
        frames = resample.swr_frames(frame, 48_000)
    except (av.FFmpegError, ValueError, IndexError):
        return None
    out = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]) if frames else np.zeros(0, np.float32)
    weights = out[:channels].copy()
    return weights if out.size == planes.shape[1] and weights.any() else None


class _NotUniform(Exception):
    """A frame whose format or layout differs from the run's, or a layout without
    measured weights: use the general path."""


def _by_runs(clip: Clip, window: _Window) -> None:
    """Planar float (AAC, any layout): downmix each frame in numpy with
    swresample's weights, join each gapless run and resample it in one matrix
    product (``tali.decode.resample``).

    The same samples as :func:`_by_frames` (equal to float rounding on the sample
    clips). Measured on the sample clips, window audio including the AAC decoding
    and the open: 4.6 vs 5.4 ms a 3 s window and 29 vs 41 ms a 30 s one, against
    swresample downmixing per frame and resampling each run in one
    ``av.AudioResampler`` call (which alone is 1.2 ms a 3 s window plus 0.45 ms to
    build its filter graph; ``benchmarks/decode/bench_resample.py``).
    """
    stream = clip.audio
    assert stream is not None
    _seek(clip, window)
    time_base = float(cast(Fraction, stream.time_base))  # checked non-None in Clip._probe
    # The first tick at or past the window end: frames compared in integer ticks.
    end_ticks = math.ceil(
        (window.exact_origin + Fraction(window.n, window.sample_rate)) / cast(Fraction, stream.time_base)
    )
    runs: list[_Run] = []
    expected_pts = None
    frames = _frames(clip, window)
    for frame in frames:
        clip.deadline.check()
        if frame.format.name != "fltp" or frame.pts is None:
            raise _NotUniform
        layout = frame.layout.name
        if frame.pts != expected_pts or frame.sample_rate != runs[-1].rate:
            weights = downmix_weights(layout)
            if weights is None:
                raise _NotUniform
            if window.mean:
                weights = weights / weights.sum()
            runs.append(_Run(frame, layout, weights))
        elif layout != runs[-1].layout:
            raise _NotUniform
        runs[-1].add(frame)
        expected_pts = frame.pts + round(frame.samples / frame.sample_rate / time_base)
        if frame.pts >= end_ticks:
            break
    origin = stream.start_time if stream.start_time is not None else 0
    for run in runs:
        _resample_run(run, window, origin)


class _Run:
    """Gapless frames of one rate and layout, downmixed as they arrive.

    Each frame is summed to mono from views of its planes (not ``to_ndarray()``:
    its ``np.vstack`` per frame measured 8 us) and released at once, so a 30 s run
    holds 30 s of mono samples, not 1300 decoded frames. Where every channel kept
    has the same weight (mono, stereo) the weight is applied once to the joined run.
    """

    def __init__(self, first: av.AudioFrame, layout: str, weights: np.ndarray) -> None:
        # ``_by_runs`` never passes a frame without pts; a decoded frame carries its stream's
        # time base, checked non-None in Clip._probe.
        self.rate, self.pts, self.time_base, self.layout = (
            first.sample_rate,
            cast(int, first.pts),
            cast(Fraction, first.time_base),
            layout,
        )
        kept = np.flatnonzero(weights)
        self.channels = kept.tolist()
        self.weights = weights[kept]
        self.common = float(self.weights[0]) if np.all(self.weights == self.weights[0]) else None
        self.chunks: list[np.ndarray] = []

    def add(self, frame: av.AudioFrame) -> None:
        # PyAV's planes are buffers; its stubs do not say so (np.frombuffer wants one).
        planes: Sequence[Any] = frame.planes
        n = frame.samples
        views = [np.frombuffer(planes[c], dtype=np.float32, count=n) for c in self.channels]
        if self.common is not None:
            chunk = views[0].copy() if len(views) == 1 else np.add(views[0], views[1])
            for view in views[2:]:
                chunk += view
        else:
            chunk = views[0] * self.weights[0]
            for view, weight in zip(views[1:], self.weights[1:]):
                chunk += view * weight
        self.chunks.append(chunk)

    def mono(self) -> np.ndarray:
        mono = np.concatenate(self.chunks)
        if self.common is not None and self.common != 1:
            mono *= np.float32(self.common)
        return mono


def _align(
    run: _Run, samples: np.ndarray, polyphase: resample.Polyphase, origin: int
) -> tuple[np.ndarray, int]:
    """Zeros before ``samples`` so the run starts a whole number of resampling periods
    (``M`` input samples, 441 at 44.1 -> 16 kHz) after the stream's first sample.

    Then its outputs fall on the grid a one-pass resample of the whole stream has
    (output ``j`` at input position ``j * M / L`` from the stream start), instead of
    one starting where the seek landed, rounded to the output grid (up to half an
    output sample off: 31 us at 16 kHz). The zeros are within the pre-roll, before
    the window. Returns the samples and the run's new pts.
    """
    offset = (run.pts - origin) * Fraction(run.time_base) * run.rate  # input samples from the start
    if offset.denominator != 1:
        return samples, run.pts
    pad = int(offset) % polyphase.base_m
    if pad == 0:
        return samples, run.pts
    shift = Fraction(pad, run.rate) / Fraction(run.time_base)
    if shift.denominator != 1:
        return samples, run.pts
    return np.concatenate([np.zeros(pad, np.float32), samples]), run.pts - int(shift)


def _resample_run(run: _Run, window: _Window, origin: int = 0) -> None:
    samples = run.mono()
    polyphase = resample.polyphase(run.rate, window.sample_rate)
    if polyphase is not None and samples.size >= polyphase.min_samples:
        samples, pts = _align(run, samples, polyphase, origin)
        window.put(polyphase.first_output_index(pts, run.time_base), polyphase(samples))
        return
    # Rates without an exact polyphase form, and runs shorter than its filter.
    joined = resample.mono_frame(samples, run.rate, run.pts, run.time_base)
    window.place(resample.swr_frames(joined, window.sample_rate))
