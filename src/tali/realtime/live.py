"""``tali.live``: aligned, processed windows from a live source, as the data arrives.

>>> for window in tali.live("http://127.0.0.1:8000/stream.ts", config, hop_seconds=1.0):
...     model(window)

Each window is a sample with the training layout (``youtube_content_video``,
``youtube_content_audio``, ``youtube_subtitle_text`` when the stream carries
subtitles, ``window``) after the same ``processors`` as training, plus ``live``:

    index               window number (0, 1, ...), per connection's stream time
    stream_start_seconds, stream_end_seconds   stream time the window covers
    arrival_wall        time.time() when the packet that completed the window arrived
    yielded_wall        time.time() just before the window was yielded
    latency_seconds     yielded_wall - arrival_wall (decode of the rest + processing)
    reconnects          reconnects so far

A source that keeps sending packets but no decodable video frame (random or damaged
bytes a demuxer still cuts into packets) raises :class:`~tali.errors.TaliStreamStalledError`
after ``timeout + NO_FRAME_GRACE_SECONDS``, whatever the source (URL, file or pipe).

A stall longer than ``timeout`` raises :class:`~tali.errors.TaliStreamStalledError`
(with ``follow=True`` it is the end of the recording: the last windows are given and
the stream ends); a broken stream :class:`~tali.errors.TaliLiveError`; with
``reconnect=`` a URL is reopened instead (counted), up to the policy's attempts.

Hostile timestamps stay bounded: a jump of more than ``MAX_GAP_SECONDS`` or a step
back (a reset) re-bases that stream so its time continues from where it was
(``stats.discontinuities`` counts them), so windows follow the media that arrived,
never the timestamps' span; a frame is real only inside its window.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import av

from tali.config import TaliConfig
from tali.decode.resample import mono_resampler
from tali.errors import TaliConfigError, TaliLiveError, TaliStreamStalledError
from tali.realtime.source import ReconnectPolicy, TimedReader, open_source
from tali.realtime.windows import Windower, first_start
from tali.schema import SubModality

__all__ = ["MAX_GAP_SECONDS", "NO_FRAME_GRACE_SECONDS", "LiveStats", "LiveStream", "live"]

#: A timestamp jump past this many seconds is a discontinuity, not a stretch the source lost.
MAX_GAP_SECONDS = 10.0
#: Seconds past ``timeout`` a source may send packets without a decodable video frame (a
#: decoder's start-up and a sparse keyframes-only stream fit well inside it).
NO_FRAME_GRACE_SECONDS = 10.0
#: A step back past this many seconds is a timestamp reset (smaller ones: a frame out of order, dropped).
RESET_SECONDS = 0.5


@dataclass
class LiveStats:
    """Latency (seconds) of every window so far, and the reconnects."""

    latencies: list[float] = field(default_factory=list)
    reconnects: int = 0
    windows: int = 0
    #: Packets the decoder rejected (skipped).
    bad_packets: int = 0
    #: Timestamp jumps and resets re-based (per stream).
    discontinuities: int = 0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        if not lat:
            return {
                "windows": 0,
                "reconnects": self.reconnects,
                "bad_packets": self.bad_packets,
                "discontinuities": self.discontinuities,
            }
        p99 = lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)]
        return {
            "windows": self.windows,
            "reconnects": self.reconnects,
            "bad_packets": self.bad_packets,
            "discontinuities": self.discontinuities,
            "latency_ms": {
                "median": 1000 * statistics.median(lat),
                "p99": 1000 * p99,
                "max": 1000 * lat[-1],
            },
        }


class LiveStream:
    """The iterator :func:`live` returns; ``stats`` fills in as it runs."""

    def __init__(
        self,
        source: Any,
        config: TaliConfig,
        *,
        hop_seconds: float,
        processors: Callable[[dict[str, Any]], dict[str, Any]] | None,
        timeout: float,
        open_timeout: float | None,
        reconnect: ReconnectPolicy | None,
        follow: bool,
        format: str | None,
        options: dict[str, str] | None,
        max_windows: int | None,
    ) -> None:
        if config.window.seconds is None:
            raise TaliConfigError("live windows need WindowConfig.seconds (a stream has no end to fill)")
        if not isinstance(hop_seconds, int | float) or hop_seconds <= 0:
            raise TaliConfigError(f"hop_seconds must be > 0, got {hop_seconds!r}")
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise TaliConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
        if reconnect is not None and not isinstance(source, str):
            raise TaliConfigError("reconnect= needs a URL or path to reopen, not a file object")
        first_start(config)  # refuses modalities and starts a stream cannot give
        self.source, self.config, self.hop_seconds = source, config, float(hop_seconds)
        self.processors, self.timeout, self.open_timeout = processors, float(timeout), open_timeout
        self.reconnect, self.follow, self.format, self.options = reconnect, follow, format, options
        self.max_windows = max_windows
        self.stats = LiveStats()
        self._reader: TimedReader | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        attempts = 0
        while True:
            try:
                for window in self._connection():
                    attempts = 0
                    yield window
                    if self.max_windows is not None and self.stats.windows >= self.max_windows:
                        return
                return  # the stream ended
            except TaliLiveError:
                if self.reconnect is None or attempts >= self.reconnect.max_attempts:
                    raise
                attempts += 1
                self.stats.reconnects += 1
                time.sleep(self.reconnect.backoff_seconds * attempts)

    def _open(self) -> av.container.InputContainer:
        source = self.source
        if not isinstance(source, str) and hasattr(source, "read"):
            self._reader = source if isinstance(source, TimedReader) else TimedReader(source, self.timeout)
            source = self._reader
        return open_source(
            source,
            timeout=self.timeout,
            open_timeout=self.open_timeout,
            follow=self.follow,
            format=self.format,
            options=self.options,
        )

    def _connection(self) -> Iterator[dict[str, Any]]:
        container = self._open()
        try:
            yield from self._windows(container)
        finally:
            container.close()

    def _windows(self, container: av.container.InputContainer) -> Iterator[dict[str, Any]]:
        cfg = self.config
        if not container.streams.video:
            raise TaliLiveError(f"live source {self.source!r} has no video stream")
        video = container.streams.video[0]
        want_audio = cfg.wants(SubModality.YOUTUBE_CONTENT_AUDIO)
        audio = container.streams.audio[0] if container.streams.audio and want_audio else None
        want_subs = cfg.wants(SubModality.YOUTUBE_SUBTITLE_TEXT)
        subs = container.streams.subtitles[0] if container.streams.subtitles and want_subs else None
        if want_audio and audio is None and cfg.audio.on_missing == "error":
            raise TaliLiveError(
                f"live source {self.source!r} has no audio stream (AudioConfig.on_missing='error')"
            )
        video.thread_type = "AUTO"
        if cfg.video.keyframes_only:
            video.codec_context.skip_frame = "NONKEY"
        windower = Windower(cfg, self.hop_seconds, audio is not None, deque() if want_subs else None)
        sr = cfg.audio.sample_rate
        resampler = mono_resampler(sr) if audio is not None else None
        zero: float | None = None  # stream seconds of the first video frame
        clock = _Rebase()  # per-stream re-basing of jumps and resets
        reader = self._reader
        streams = [s for s in (video, audio, subs) if s is not None]
        packets = container.demux(streams)
        # Packets that never give a video frame (garbage the demuxer still cuts up, over any
        # transport) would otherwise be read forever: the no-frame clock bounds them.
        no_frame_limit = self.timeout + NO_FRAME_GRACE_SECONDS
        last_frame = time.monotonic()
        while True:
            try:
                packet = next(packets)
                arrival = time.time()
                if reader is not None:
                    reader.packet()
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    # A damaged packet (a live source's usual blemish): counted, skipped;
                    # the frames it would have given are missing and the next frame
                    # stands in for them.
                    self.stats.bad_packets += 1
                    continue
            except StopIteration:
                yield from self._flush(windower)
                return
            except av.ExitError as exc:
                if self.follow:  # a recording that stopped growing: finished, not broken
                    yield from self._flush(windower)
                    return
                raise TaliStreamStalledError(
                    f"live source {self.source!r} sent nothing for {self.timeout:g} s"
                ) from exc
            except (av.FFmpegError, OSError) as exc:
                if isinstance(exc, TaliLiveError):
                    raise
                raise TaliLiveError(
                    f"live source {self.source!r} broke: {type(exc).__name__}: {exc}"
                ) from exc
            if packet.stream is subs:
                if zero is not None and windower.subtitles is not None and packet.pts is not None:
                    t = float(packet.pts * packet.time_base) - zero + clock.video_shift
                    windower.subtitles.append((t, _text_of(frames)))
                frames = []
            for frame in frames:
                item: Any = frame
                if item.pts is None:
                    continue
                seconds = float(item.pts * item.time_base)
                if packet.stream is video:
                    last_frame = time.monotonic()
                    if zero is None:
                        zero = seconds
                    shown = clock.video(seconds - zero, self.stats)
                    if shown is not None:
                        windower.add_video(shown, item)
                elif zero is not None and resampler is not None:  # audio after the first frame
                    for out in resampler.resample(item):
                        resampled: Any = out
                        samples = resampled.to_ndarray().reshape(-1)
                        first = round(float(resampled.pts * resampled.time_base) * sr - zero * sr)
                        windower.add_audio(clock.audio(first, samples.size, sr, self.stats), samples)
            if time.monotonic() - last_frame > no_frame_limit:
                raise TaliStreamStalledError(
                    f"live source {self.source!r} sent packets but no decodable video frame for "
                    f"{no_frame_limit:g} s ({self.stats.bad_packets} damaged packets)"
                )
            for sample in windower.ready(arrival):
                yield self._finish(sample)

    def _flush(self, windower: Windower) -> Iterator[dict[str, Any]]:
        for sample in windower.flush(time.time()):
            yield self._finish(sample)

    def _finish(self, sample: dict[str, Any]) -> dict[str, Any]:
        arrival = sample.pop("_arrival")
        if self.processors is not None:
            sample = self.processors(sample)
        now = time.time()
        start = sample["window"]["start_seconds"]
        sample["live"] = {
            "index": sample["key"],
            "stream_start_seconds": start,
            "stream_end_seconds": start + sample["window"]["duration_seconds"],
            "arrival_wall": arrival,
            "yielded_wall": now,
            "latency_seconds": now - arrival,
            "reconnects": self.stats.reconnects,
        }
        self.stats.windows += 1
        self.stats.latencies.append(now - arrival)
        return sample


class _Rebase:
    """Keeps each stream's time continuous across timestamp jumps and resets."""

    def __init__(self) -> None:
        self.video_shift = 0.0
        self.last_video: float | None = None
        self.step = 1 / 30  # the last frame interval seen (the gap a re-based frame follows)
        self.audio_shift = 0
        self.audio_next: int | None = None

    def video(self, t: float, stats: LiveStats) -> float | None:
        """Stream seconds of a frame at raw ``t``; None for a frame out of order (dropped)."""
        t += self.video_shift
        last = self.last_video
        if last is not None:
            gap = t - last
            if gap > MAX_GAP_SECONDS or gap < -RESET_SECONDS:
                self.video_shift += last + self.step - t
                t = last + self.step
                stats.discontinuities += 1
            elif gap <= 0:
                return None
            else:
                self.step = min(gap, 1.0)
        self.last_video = t
        return t

    def audio(self, first: int, count: int, sample_rate: int, stats: LiveStats) -> int:
        """Sample index of a chunk whose raw index is ``first``."""
        first += self.audio_shift
        if self.audio_next is not None:
            jump = first - self.audio_next
            if jump > MAX_GAP_SECONDS * sample_rate or jump < -RESET_SECONDS * sample_rate:
                self.audio_shift -= jump
                first = self.audio_next
                stats.discontinuities += 1
        self.audio_next = first + count
        return first


def _text_of(items: Any) -> str:
    """Text of decoded subtitles (PyAV: ``AssSubtitle.dialogue`` or ``.text``; bitmaps have none)."""
    parts = []
    for item in items:
        value = getattr(item, "dialogue", None) or getattr(item, "text", None) or b""
        parts.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return " ".join(p.strip() for p in parts if p.strip())


def live(
    source: Any,
    config: TaliConfig | None = None,
    *,
    hop_seconds: float = 1.0,
    processors: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    timeout: float = 5.0,
    open_timeout: float | None = None,
    reconnect: ReconnectPolicy | None = None,
    follow: bool = False,
    format: str | None = None,
    options: dict[str, str] | None = None,
    max_windows: int | None = None,
) -> LiveStream:
    """Windows of ``config.window.seconds`` every ``hop_seconds`` from ``source``
    (URL, path, ``follow=True`` for a file still being written, or a readable
    pipe). ``config`` defaults to 3 s windows of 8 frames at 224 and 16 kHz audio; its
    modalities (video, audio, subtitles), ``video.output``/``selection``/``orientation``/
    ``keyframes_only``, ``audio.sample_rate``/``on_missing`` and a numeric ``window.start``
    (where window 0 starts) apply as in training."""
    return LiveStream(
        source,
        config
        or TaliConfig(modalities=(SubModality.YOUTUBE_CONTENT_VIDEO, SubModality.YOUTUBE_CONTENT_AUDIO)),
        hop_seconds=hop_seconds,
        processors=processors,
        timeout=timeout,
        open_timeout=open_timeout,
        reconnect=reconnect,
        follow=follow,
        format=format,
        options=options,
        max_windows=max_windows,
    )
