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
    n = int(round(duration_seconds * sample_rate))
    out = np.zeros(n, dtype=np.float32)
    filled = np.zeros(n, dtype=bool)
    origin = clip.info.video_start_seconds + start_seconds  # stream seconds of out[0]
    first_index = int(round(origin * sample_rate))
    stream = clip.audio
    with decode_errors(clip.item_idx, what="decode audio of"):
        seek_to = max(origin - _PREROLL_SECONDS, 0.0)
        clip.container.seek(int(seek_to / stream.time_base), stream=stream, backward=True)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        out_seconds = 1.0 / sample_rate  # the resampler's output time base

        def place(frames: list[av.AudioFrame]) -> bool:
            """Copy resampled frames into ``out``; True once past the window end."""
            for frame in frames:
                if frame.pts is None:
                    continue
                begin = int(round(frame.pts * out_seconds * sample_rate)) - first_index
                data = frame.to_ndarray().reshape(-1)
                lo, hi = max(begin, 0), min(begin + data.size, n)
                if hi > lo:
                    out[lo:hi] = data[lo - begin : hi - begin]
                    filled[lo:hi] = True
                if begin >= n:
                    return True
            return False

        done = False
        for frame in clip.container.decode(stream):
            clip.deadline.check()
            if place(resampler.resample(frame)):
                done = True
                break
        if not done:
            place(resampler.resample(None))
    return AudioWindow(
        samples=out, sample_rate=sample_rate, start_seconds=start_seconds, valid_samples=int(filled.sum())
    )
