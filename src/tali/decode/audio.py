"""Cut one window of a clip's audio: mono, resampled, exactly ``round(d * sr)`` samples.

Downmixing and resampling run in FFmpeg's ``swresample`` (via
``av.AudioResampler``), from whatever layout and rate the stream has.
Samples are placed by their timestamps, not by counting, so a stream that
starts late (or has a gap) lands at the right time, with zeros elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from tali.decode.clip import Clip, decode_errors
from tali.errors import TaliMissingStreamError

__all__ = ["AudioWindow", "decode_audio_window", "silent_window"]

#: Decode from this long before the window: AAC's first frame after a seek
#: lacks the overlap of the frame before it and comes out attenuated.
_PREROLL_SECONDS = 0.1


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

    def __repr__(self) -> str:
        return (
            f"AudioWindow(samples={self.samples.shape}, sample_rate={self.sample_rate}, "
            f"valid_samples={self.valid_samples}, missing={self.missing})"
        )


def silent_window(start: float, duration: float, sample_rate: int) -> AudioWindow:
    n = int(round(duration * sample_rate))
    return AudioWindow(np.zeros(n, np.float32), sample_rate, start, valid_samples=0, missing=True)


def decode_audio_window(
    clip: Clip, start_seconds: float, duration_seconds: float, sample_rate: int
) -> AudioWindow:
    """Decode ``[start, start + duration]`` (clip seconds) of the first audio stream."""
    if clip.audio is None:
        raise TaliMissingStreamError(
            "audio requested but the clip has no audio stream",
            item_idx=clip.item_idx,
            field="youtube_video_content",
        )
    window = _Window(clip, start_seconds, duration_seconds, sample_rate)
    with decode_errors(clip.item_idx, what="decode audio of"):
        ctx = clip.audio.codec_context
        if ctx.format is not None and ctx.format.name == "fltp" and ctx.layout.name in _DOWNMIX:
            try:
                _by_runs(clip, window)
            except _NotUniform:
                window.clear()
                _by_frames(clip, window)
        else:
            _by_frames(clip, window)
    return AudioWindow(
        samples=window.out, sample_rate=sample_rate, start_seconds=start_seconds,
        valid_samples=int(window.filled.sum()),
    )


class _Window:
    """The output buffer and the bookkeeping to place resampled audio by timestamp."""

    def __init__(self, clip: Clip, start_seconds: float, duration_seconds: float, sample_rate: int) -> None:
        self.n = int(round(duration_seconds * sample_rate))
        self.out = np.zeros(self.n, dtype=np.float32)
        self.filled = np.zeros(self.n, dtype=bool)
        self.sample_rate = sample_rate
        self.origin = clip.info.video_start_seconds + start_seconds  # stream seconds of out[0]
        self.first_index = int(round(self.origin * sample_rate))

    def clear(self) -> None:
        self.out[:] = 0
        self.filled[:] = False

    def place(self, frames: list[av.AudioFrame]) -> bool:
        """Copy resampled frames into ``out``; True once past the window end."""
        for frame in frames:
            if frame.pts is None:
                continue
            # The resampler's output time base is 1 / sample_rate: pts counts samples.
            begin = frame.pts - self.first_index
            data = frame.to_ndarray().reshape(-1)
            lo, hi = max(begin, 0), min(begin + data.size, self.n)
            if hi > lo:
                self.out[lo:hi] = data[lo - begin : hi - begin]
                self.filled[lo:hi] = True
            if begin >= self.n:
                return True
        return False


def _seek(clip: Clip, window: _Window) -> None:
    stream = clip.audio
    assert stream is not None
    seek_to = max(window.origin - _PREROLL_SECONDS, 0.0)
    clip.container.seek(int(seek_to / stream.time_base), stream=stream, backward=True)


def _new_resampler(sample_rate: int) -> av.AudioResampler:
    return av.AudioResampler(format="flt", layout="mono", rate=sample_rate)


def _by_frames(clip: Clip, window: _Window) -> None:
    """Any layout and sample format: ``swresample`` downmixes and resamples frame by frame."""
    _seek(clip, window)
    resampler = _new_resampler(window.sample_rate)
    for frame in clip.container.decode(clip.audio):
        clip.deadline.check()
        if window.place(resampler.resample(frame)):
            return
    window.place(resampler.resample(None))


#: swresample's downmix to mono for float output (no normalisation): mono is kept,
#: stereo is (L + R) / sqrt(2). Other layouts go through swresample's own matrix.
_DOWNMIX = {"mono": None, "stereo": np.float32(np.sqrt(0.5))}


class _NotUniform(Exception):
    """A frame whose format or layout differs from the stream's: use the general path."""


def _by_runs(clip: Clip, window: _Window) -> None:
    """Planar float mono/stereo (AAC): downmix in numpy, resample each gapless run
    of frames in one call.

    The same samples as :func:`_by_frames` (equal to float rounding on the sample
    clips): swresample's stereo-to-mono conversion measured 1.5 ms per 3 s window,
    as much as the resampling itself, and the per-frame calls another 0.7 ms;
    this path takes 4.7 instead of 5.8 ms a 3 s window including the AAC decoding.
    """
    stream = clip.audio
    assert stream is not None
    _seek(clip, window)
    time_base = float(stream.time_base)
    end = window.origin + window.n / window.sample_rate
    runs: list[tuple[av.AudioFrame, list[np.ndarray]]] = []  # (first frame, mono chunks)
    expected_pts = None
    for frame in clip.container.decode(stream):
        clip.deadline.check()
        layout = frame.layout.name
        if frame.format.name != "fltp" or layout not in _DOWNMIX or frame.pts is None:
            raise _NotUniform
        # Views of the planes, not to_ndarray(): its np.vstack per frame measured
        # 8 us, a third of a 30 s window's audio time beyond the AAC decoding.
        left = np.frombuffer(frame.planes[0], dtype=np.float32, count=frame.samples)
        if layout == "mono":
            mono = left.copy()
        else:
            right = np.frombuffer(frame.planes[1], dtype=np.float32, count=frame.samples)
            mono = (left + right) * _DOWNMIX["stereo"]
        if frame.pts != expected_pts or frame.sample_rate != runs[-1][0].sample_rate:
            runs.append((frame, []))
        runs[-1][1].append(mono)
        expected_pts = frame.pts + int(round(frame.samples / frame.sample_rate / time_base))
        if frame.pts * time_base >= end:
            break
    for first, chunks in runs:
        joined = av.AudioFrame.from_ndarray(np.concatenate(chunks)[None], format="flt", layout="mono")
        joined.sample_rate, joined.pts, joined.time_base = first.sample_rate, first.pts, first.time_base
        resampler = _new_resampler(window.sample_rate)
        window.place(resampler.resample(joined) + resampler.resample(None))
