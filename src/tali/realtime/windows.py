"""Cut aligned windows out of a stream as it arrives: pure bookkeeping, no I/O.

Window ``k`` covers stream seconds ``[k * hop, k * hop + d]`` (0 = the first
video frame). Its ``N`` frame slots sit at the middle of ``N`` equal parts
(as ``selection="uniform"`` in training); a slot gets the frame shown at its
time, which is settled once the *next* frame arrives, and only those frames
are converted to RGB (in swscale, at the output size). Audio is resampled to
mono at the config's rate and placed by timestamp. A window is ready once
video and audio both reach its end; what it needed is then dropped, so memory
stays at a few windows whatever the stream's length.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tali.config import TaliConfig
from tali.decode.video import to_rgb

__all__ = ["Windower"]


@dataclass
class _Pending:
    index: int
    start: float
    slots: np.ndarray  # float64 [N] stream seconds
    frames: list[np.ndarray | None]
    pts: list[float]
    arrival: float = 0.0


@dataclass
class Windower:
    config: TaliConfig
    hop_seconds: float
    has_audio: bool
    #: (start, text) of subtitle lines seen, when the stream has subtitles.
    subtitles: deque[tuple[float, str]] | None = None
    pending: deque[_Pending] = field(default_factory=deque)
    next_index: int = 0
    video_until: float = -math.inf
    prev: tuple[float, Any] | None = None
    audio_chunks: deque[tuple[int, np.ndarray]] = field(default_factory=deque)
    audio_end: int = -(2**62)

    @property
    def seconds(self) -> float:
        return float(self.config.window.seconds)  # type: ignore[arg-type]

    def _open_windows(self, until: float) -> None:
        n = self.config.video.num_frames
        d = self.seconds
        while self.next_index * self.hop_seconds <= until:
            start = self.next_index * self.hop_seconds
            slots = start + (np.arange(n) + 0.5) * d / n
            self.pending.append(_Pending(self.next_index, start, slots, [None] * n, [math.nan] * n))
            self.next_index += 1

    def add_video(self, pts: float, frame: Any) -> None:
        """A decoded frame shown from ``pts`` (stream seconds) until the next one."""
        self._open_windows(pts)
        if self.prev is not None:
            prev_pts, prev_frame = self.prev
            rgb = None
            for window in self.pending:
                for i, t in enumerate(window.slots):
                    if window.frames[i] is None and t < pts:
                        if rgb is None:
                            v = self.config.video
                            rgb = to_rgb(prev_frame, v.size, v.interpolation)
                        window.frames[i] = rgb
                        window.pts[i] = prev_pts
        self.prev = (pts, frame)
        self.video_until = max(self.video_until, pts)

    def add_audio(self, first_index: int, samples: np.ndarray) -> None:
        """Mono samples at the config's rate; ``first_index`` counts samples from stream second 0."""
        if samples.size:
            self.audio_chunks.append((first_index, samples))
            self.audio_end = max(self.audio_end, first_index + samples.size)

    def flush(self, arrival: float, *, slack_seconds: float = 0.1) -> list[dict[str, Any]]:
        """At the end of the stream: the last frame settles the slots up to ``slack``
        past it, audio short of a window's end by at most ``slack`` is zero-padded
        (``valid_samples`` says how much is real); windows still short are dropped."""
        if self.prev is not None:
            last_pts, last_frame = self.prev
            self.add_video(last_pts + slack_seconds, last_frame)
        self.audio_end += round(slack_seconds * self.config.audio.sample_rate)
        return self.ready(arrival)

    def ready(self, arrival: float) -> list[dict[str, Any]]:
        """Windows whose video and audio are complete, oldest first (each as a sample dict);
        ``arrival`` is when the data that completed them arrived (wall clock)."""
        out = []
        sr = self.config.audio.sample_rate
        d = self.seconds
        while self.pending:
            window = self.pending[0]
            video_done = all(f is not None for f in window.frames)
            audio_done = not self.has_audio or self.audio_end >= round(window.start * sr) + round(d * sr)
            if not (video_done and audio_done):
                break
            self.pending.popleft()
            window.arrival = arrival
            out.append(self._sample(window))
            self._prune()
        return out

    def _audio(self, start: int, n: int) -> tuple[np.ndarray, int]:
        out = np.zeros(n, np.float32)
        filled = 0
        for first, samples in self.audio_chunks:
            lo, hi = max(first, start), min(first + samples.size, start + n)
            if hi > lo:
                out[lo - start : hi - start] = samples[lo - first : hi - first]
                filled += hi - lo
        return out, filled

    def _sample(self, window: _Pending) -> dict[str, Any]:
        cfg, d = self.config, self.seconds
        sr = cfg.audio.sample_rate
        n = round(d * sr)
        if self.has_audio:
            wave, valid = self._audio(round(window.start * sr), n)
        else:
            wave, valid = np.zeros(n, np.float32), 0
        sample: dict[str, Any] = {
            "item_idx": None,
            "key": window.index,
            "epoch": 0,
            "window": {
                "start_seconds": window.start,
                "duration_seconds": d,
                "clip_seconds": window.start + d,
            },
            "youtube_content_video": {
                "frames": torch.from_numpy(np.stack(window.frames)),  # type: ignore[arg-type]
                "pts_seconds": torch.tensor(window.pts, dtype=torch.float64),
                "mask": torch.ones(len(window.frames), dtype=torch.bool),
            },
            "youtube_content_audio": {
                "waveform": torch.from_numpy(wave),
                "sample_rate": sr,
                "valid_samples": int(valid),
                "missing": not self.has_audio,
            },
            "_arrival": window.arrival,
        }
        if self.subtitles is not None:
            lines = [(t, text) for t, text in self.subtitles if window.start <= t <= window.start + d]
            sample["youtube_subtitle_text"] = {
                "text": " ".join(text for _, text in lines if text),
                "num_lines": len(lines),
                "line_seconds": torch.tensor([t - window.start for t, _ in lines], dtype=torch.float64),
            }
        return sample

    def _prune(self) -> None:
        """Drop audio and subtitles no pending or future window can need."""
        keep_from = self.pending[0].start if self.pending else self.next_index * self.hop_seconds
        sr = self.config.audio.sample_rate
        first_needed = round(keep_from * sr)
        while self.audio_chunks and self.audio_chunks[0][0] + self.audio_chunks[0][1].size <= first_needed:
            self.audio_chunks.popleft()
        if self.subtitles is not None:
            while self.subtitles and self.subtitles[0][0] < keep_from:
                self.subtitles.popleft()
