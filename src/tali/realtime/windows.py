"""Cut aligned windows out of a stream as it arrives: pure bookkeeping, no I/O.

Window ``k`` covers stream seconds ``[s0 + k * hop, s0 + k * hop + d]`` (0 = the
first video frame, ``s0`` = ``WindowConfig.start`` when it is a number). Its
``N`` frame slots follow ``VideoConfig.selection``: ``uniform`` at the middle of
``N`` equal parts, ``random`` at ``N`` sorted times drawn for the window
(seeded by the config's seed and the window number), ``sequential`` the first
``N`` frames starting in it. A slot gets the frame shown at its time, settled
once the *next* frame arrives; only those frames are converted to RGB (in
swscale, at the output size). A slot is real (``mask``) only if its frame starts
inside the window. Audio is resampled to mono at the config's rate and placed
by timestamp. A window is ready once video and audio both reach its end (audio
lagging video by more than ``AUDIO_LAG_SECONDS`` is given up on: zeros,
``valid_samples`` says how much is real); what it needed is then dropped, so
memory stays at a few windows whatever the stream's length.

The sample is built from the modality readers' output types (:mod:`tali.sample`),
so a live window has the training layout for the requested modalities.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tali.config import TaliConfig
from tali.decode.video import rotation_of, to_rgb
from tali.errors import TaliConfigError
from tali.sample.audio import AudioWindow
from tali.sample.layout import window_dict
from tali.sample.text import Subtitles
from tali.sample.video import frames_output
from tali.schema import SubModality
from tali.transform import sample_rng_for
from tali.window import Window, seed_key

__all__ = ["AUDIO_LAG_SECONDS", "LIVE_MODALITIES", "Windower", "first_start"]

S = SubModality
#: What a live stream can give: the window's frames, its audio, its subtitle lines.
LIVE_MODALITIES = (S.YOUTUBE_CONTENT_VIDEO, S.YOUTUBE_CONTENT_AUDIO, S.YOUTUBE_SUBTITLE_TEXT)
#: A window waits at most this long (stream seconds of video past its end) for its audio.
AUDIO_LAG_SECONDS = 10.0


def first_start(config: TaliConfig) -> float:
    """Stream seconds where window 0 starts; refuses what a live stream cannot give."""
    other = [m.value for m in config.modalities if m not in LIVE_MODALITIES]
    if other:
        raise TaliConfigError(
            f"live windows give {', '.join(m.value for m in LIVE_MODALITIES)}; "
            f"the config also asks for {', '.join(other)}"
        )
    if not config.wants(S.YOUTUBE_CONTENT_VIDEO):
        raise TaliConfigError(
            "live windows are placed on the video: the config must ask for youtube_content_video"
        )
    start = config.window.start
    if isinstance(start, int | float):
        return float(start)
    if start in ("start", "random"):  # a stream has no end to draw a start in: windows tile it from 0
        return 0.0
    raise TaliConfigError(
        f"WindowConfig.start={start!r} has no meaning on a live stream; choose a number of seconds, "
        "'start' or 'random' (both: from the first frame)"
    )


@dataclass
class _Pending:
    index: int
    start: float
    end: float
    slots: np.ndarray | None  # float64 [N] stream seconds; None: sequential
    frames: list[np.ndarray | None]
    pts: list[float]
    arrival: float = 0.0
    filled: int = 0


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
    rotation: int = 0
    audio_chunks: deque[tuple[int, np.ndarray]] = field(default_factory=deque)
    audio_end: int = -(2**62)
    offset: float = 0.0

    def __post_init__(self) -> None:
        self.offset = first_start(self.config)

    @property
    def seconds(self) -> float:
        return float(self.config.window.seconds)  # type: ignore[arg-type]

    def _open_windows(self, until: float) -> None:
        n, d, v = self.config.video.num_frames, self.seconds, self.config.video
        while self.offset + self.next_index * self.hop_seconds <= until:
            k = self.next_index
            start = self.offset + k * self.hop_seconds
            slots: np.ndarray | None
            if v.selection == "uniform":
                slots = start + (np.arange(n) + 0.5) * d / n
            elif v.selection == "random":
                rng = sample_rng_for(self.config.seed, 0, seed_key(None, k), "frames")
                slots = start + np.sort(rng.random(n)) * d
            else:
                slots = None
            self.pending.append(_Pending(k, start, start + d, slots, [None] * n, [math.nan] * n))
            self.next_index += 1

    def add_video(self, pts: float, frame: Any) -> None:
        """A decoded frame shown from ``pts`` (stream seconds, ascending) until the next one."""
        if self.config.video.keyframes_only and not getattr(frame, "key_frame", True):
            return  # only keyframes are candidates; a slot takes the keyframe shown at its time
        self._open_windows(pts)
        if self.prev is not None:
            self._settle(pts)
        self.prev = (pts, frame)
        self.video_until = max(self.video_until, pts)

    def _settle(self, until: float) -> None:
        """``prev`` is the frame shown until ``until``: fill the slots it is shown at."""
        assert self.prev is not None
        prev_pts, prev_frame = self.prev
        rgb = None

        def convert() -> np.ndarray:
            nonlocal rgb
            if rgb is None:
                v = self.config.video
                rotate = v.orientation == "display"
                rgb = to_rgb(prev_frame, v.size, v.interpolation, rotate=rotate)
                self.rotation = rotation_of(prev_frame) if rotate else 0
            return rgb

        for window in self.pending:
            if window.slots is None:  # sequential: the frames starting in the window, in order
                if window.start <= prev_pts < window.end and window.filled < len(window.frames):
                    window.frames[window.filled], window.pts[window.filled] = convert(), prev_pts
                    window.filled += 1
                if until >= window.end and window.filled < len(window.frames):
                    last = window.filled - 1
                    for i in range(window.filled, len(window.frames)):  # padding repeats the last
                        window.frames[i] = window.frames[last] if last >= 0 else convert()
                        window.pts[i] = window.pts[last] if last >= 0 else prev_pts
                    window.filled = len(window.frames)
                continue
            for i, t in enumerate(window.slots):
                if window.frames[i] is None and t < until:
                    window.frames[i], window.pts[i] = convert(), prev_pts

    def add_audio(self, first_index: int, samples: np.ndarray) -> None:
        """Mono samples at the config's rate; ``first_index`` counts samples from stream second 0."""
        if samples.size:
            self.audio_chunks.append((first_index, samples))
            self.audio_end = max(self.audio_end, first_index + samples.size)
            self._prune()

    def flush(self, arrival: float, *, slack_seconds: float = 0.1) -> list[dict[str, Any]]:
        """At the end of the stream: the last frame settles the slots up to ``slack`` past
        it, audio short of a window's end by at most ``slack`` is zero-padded
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
        while self.pending:
            window = self.pending[0]
            video_done = all(f is not None for f in window.frames)
            audio_done = (
                not self.has_audio
                or self.audio_end >= round(window.start * sr) + round(self.seconds * sr)
                or self.video_until >= window.end + AUDIO_LAG_SECONDS
            )
            if not (video_done and audio_done):
                break
            self.pending.popleft()
            window.arrival = arrival
            out.append(self._sample(window))
            self._prune()
        return out

    def _audio(self, start: int, n: int) -> tuple[np.ndarray, int]:
        out = np.zeros(n, np.float32)
        covered = np.zeros(n, bool)  # chunks may overlap (resampler edges): count each sample once
        for first, samples in self.audio_chunks:
            lo, hi = max(first, start), min(first + samples.size, start + n)
            if hi > lo:
                out[lo - start : hi - start] = samples[lo - first : hi - first]
                covered[lo - start : hi - start] = True
        return out, int(covered.sum())

    def _sample(self, window: _Pending) -> dict[str, Any]:
        cfg, d = self.config, self.seconds
        sample: dict[str, Any] = {
            "item_idx": -1,  # a live window has no dataset row (the sentinel of a null item_idx)
            "key": window.index,
            "epoch": 0,
            "window": window_dict(Window(window.start, d, window.start + d)),
            "_arrival": window.arrival,
        }
        pts = np.asarray(window.pts, dtype=np.float64)
        # A slot is real only if its frame starts inside the window: a stale frame shown
        # across a gap in the stream is padding, not the window's content.
        mask = (pts >= window.start) & (pts < window.end)
        sample[S.YOUTUBE_CONTENT_VIDEO.value] = frames_output(
            np.stack(window.frames),  # type: ignore[arg-type]
            pts,
            mask,
            self.rotation,
            cfg.video.output,
        ).to_dict()
        if cfg.wants(S.YOUTUBE_CONTENT_AUDIO):
            sr = cfg.audio.sample_rate
            n = round(d * sr)
            if self.has_audio:
                wave, valid = self._audio(round(window.start * sr), n)
            else:
                wave, valid = np.zeros(n, np.float32), 0
            audio = AudioWindow(torch.from_numpy(wave), sr, int(valid), not self.has_audio)
            sample[S.YOUTUBE_CONTENT_AUDIO.value] = audio.to_dict()
        if cfg.wants(S.YOUTUBE_SUBTITLE_TEXT):
            lines = [(t, text) for t, text in (self.subtitles or ()) if window.start <= t <= window.start + d]
            sample[S.YOUTUBE_SUBTITLE_TEXT.value] = Subtitles(
                " ".join(text for _, text in lines if text),
                len(lines),
                torch.tensor([t - window.start for t, _ in lines], dtype=torch.float64),
                [text for _, text in lines],
            ).to_dict()
        return sample

    def _prune(self) -> None:
        """Drop audio and subtitles no pending or future window can need."""
        keep_from = (
            self.pending[0].start if self.pending else self.offset + self.next_index * self.hop_seconds
        )
        sr = self.config.audio.sample_rate
        first_needed = round(keep_from * sr)
        while self.audio_chunks and self.audio_chunks[0][0] + self.audio_chunks[0][1].size <= first_needed:
            self.audio_chunks.popleft()
        if self.subtitles is not None:
            while self.subtitles and self.subtitles[0][0] < keep_from:
                self.subtitles.popleft()
