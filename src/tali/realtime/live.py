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

A stall longer than ``timeout`` raises :class:`~tali.errors.TaliStreamStalledError`;
a broken stream :class:`~tali.errors.TaliLiveError`; with ``reconnect=`` a URL
is reopened instead (counted), up to the policy's attempts.
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
from tali.realtime.source import ReconnectPolicy, open_source
from tali.realtime.windows import Windower
from tali.schema import SubModality

__all__ = ["LiveStats", "LiveStream", "live"]


@dataclass
class LiveStats:
    """Latency (seconds) of every window so far, and the reconnects."""

    latencies: list[float] = field(default_factory=list)
    reconnects: int = 0
    windows: int = 0
    #: Packets the decoder rejected (skipped).
    bad_packets: int = 0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        if not lat:
            return {"windows": 0, "reconnects": self.reconnects, "bad_packets": self.bad_packets}
        p99 = lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)]
        return {
            "windows": self.windows,
            "reconnects": self.reconnects,
            "bad_packets": self.bad_packets,
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
        self.source, self.config, self.hop_seconds = source, config, float(hop_seconds)
        self.processors, self.timeout, self.open_timeout = processors, float(timeout), open_timeout
        self.reconnect, self.follow, self.format, self.options = reconnect, follow, format, options
        self.max_windows = max_windows
        self.stats = LiveStats()

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
        return open_source(
            self.source,
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
        if not container.streams.video:
            raise TaliLiveError(f"live source {self.source!r} has no video stream")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        subs = container.streams.subtitles[0] if container.streams.subtitles else None
        if audio is None and self.config.audio.on_missing == "error":
            raise TaliLiveError(
                f"live source {self.source!r} has no audio stream (AudioConfig.on_missing='error')"
            )
        video.thread_type = "AUTO"
        windower = Windower(
            self.config, self.hop_seconds, audio is not None, deque() if subs is not None else None
        )
        sr = self.config.audio.sample_rate
        resampler = mono_resampler(sr) if audio is not None else None
        zero: float | None = None  # stream seconds of the first video frame
        streams = [s for s in (video, audio, subs) if s is not None]
        packets = container.demux(streams)
        while True:
            try:
                packet = next(packets)
                arrival = time.time()
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    # A damaged packet (a live source's usual blemish): counted, skipped;
                    # the frames it would have given are missing and the next frame
                    # stands in for them.
                    self.stats.bad_packets += 1
                    continue
            except StopIteration:
                for sample in windower.flush(time.time()):
                    yield self._finish(sample)
                return
            except av.ExitError as exc:
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
                    windower.subtitles.append((float(packet.pts * packet.time_base) - zero, _text_of(frames)))
                frames = []
            for frame in frames:
                item: Any = frame
                if item.pts is None:
                    continue
                seconds = float(item.pts * item.time_base)
                if packet.stream is video:
                    if zero is None:
                        zero = seconds
                    windower.add_video(seconds - zero, item)
                elif zero is not None and resampler is not None:  # audio after the first frame
                    for out in resampler.resample(item):
                        resampled: Any = out
                        first = round(float(resampled.pts * resampled.time_base) * sr - zero * sr)
                        windower.add_audio(first, resampled.to_ndarray().reshape(-1))
            for sample in windower.ready(arrival):
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
    pipe). ``config`` defaults to 3 s windows of 8 frames at 224 and 16 kHz audio."""
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
