"""Open a live source with timeouts: a URL PyAV can open, a file still being written, or a pipe.

- URL or path: ``av.open(..., timeout=(open, read))``: PyAV's interrupt callback
  aborts any FFmpeg read that waits longer than ``read`` seconds.
- ``follow=True`` (a file still being written): FFmpeg's file protocol retries at
  the end of the file (``follow=1``) until data arrives or the read timeout hits.
- A file-like object (a pipe, a socket's file): read on a thread into a bounded
  queue, so a stalled writer raises after ``read`` seconds instead of blocking
  FFmpeg forever (a blocking ``read()`` never checks FFmpeg's interrupt callback).

Every failure is typed: :class:`~tali.errors.TaliStreamStalledError` for a
timeout, :class:`~tali.errors.TaliLiveError` for anything else.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import av

from tali.errors import TaliConfigError, TaliLiveError, TaliStreamStalledError

__all__ = ["PROBE_SECONDS", "ReconnectPolicy", "TimedReader", "open_source"]

#: Extra seconds a pipe may send bytes without a packet while FFmpeg opens it (probing a
#: paced stream reads up to its 5 s analyzeduration before the first packet).
PROBE_SECONDS = 10.0


@dataclass(frozen=True, kw_only=True)
class ReconnectPolicy:
    """Reopen a URL that stalled or broke, at most ``max_attempts`` times in a row,
    waiting ``backoff_seconds * attempt`` before each try. Windows continue from the
    new connection; each window records how many reconnects came before it."""

    max_attempts: int = 3
    backoff_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise TaliConfigError(
                f"ReconnectPolicy.max_attempts must be an int >= 1, got {self.max_attempts!r}"
            )
        if not isinstance(self.backoff_seconds, int | float) or self.backoff_seconds < 0:
            raise TaliConfigError(
                f"ReconnectPolicy.backoff_seconds must be >= 0, got {self.backoff_seconds!r}"
            )


class TimedReader:
    """A file-like wrapper whose ``read`` waits at most ``timeout`` seconds for data, and
    raises when ``timeout`` seconds pass with bytes arriving but no packet demuxed from
    them (:meth:`packet` is called for each; random bytes would be scanned forever)."""

    def __init__(self, raw: Any, timeout: float, *, chunk: int = 1 << 16, depth: int = 64) -> None:
        self.raw, self.timeout, self.chunk = raw, timeout, chunk
        # The no-packet clock runs from the start: a source that never yields a packet
        # (random bytes a demuxer scans forever) times out like one that sends nothing.
        self._last_packet = time.monotonic()
        self._received = 0  # bytes since the last packet
        #: While FFmpeg opens the source, an exception raised in ``read`` is printed and
        #: dropped by PyAV; it is kept here instead (``read`` returns EOF) and re-raised.
        self.opening = True
        self.error: TaliLiveError | None = None
        self._queue: queue.Queue[bytes | Exception | None] = queue.Queue(maxsize=depth)
        self._buffer = b""
        self._eof = False
        self._thread = threading.Thread(target=self._pump, name="tali-live-reader", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            while True:
                data = self.raw.read1(self.chunk) if hasattr(self.raw, "read1") else self.raw.read(self.chunk)
                if not data:
                    self._queue.put(None)
                    return
                self._queue.put(bytes(data))
        except Exception as exc:  # noqa: BLE001 - handed to the reading thread, which raises it typed
            self._queue.put(exc)

    def __repr__(self) -> str:
        return f"<pipe {getattr(self.raw, 'name', type(self.raw).__name__)}>"

    def packet(self) -> None:
        """The demuxer produced a packet: the no-packet clock starts again."""
        self._last_packet = time.monotonic()
        self._received = 0

    def read(self, n: int = -1) -> bytes:
        try:
            return self._read(n)
        except TaliLiveError as exc:
            if not self.opening:
                raise
            self.error = exc
            return b""

    def _read(self, n: int) -> bytes:
        # While opening, FFmpeg probes up to ~5 s of stream (analyzeduration) without a packet.
        allowed = self.timeout + (PROBE_SECONDS if self.opening else 0.0)
        if self._received and time.monotonic() - self._last_packet > allowed:
            raise TaliStreamStalledError(f"the pipe sent bytes but no packet for {allowed:g} s")
        while not self._eof and (n < 0 or len(self._buffer) < n):
            try:
                item = self._queue.get(timeout=self.timeout)
            except queue.Empty:
                if self._buffer:
                    break
                raise TaliStreamStalledError(f"no data from the pipe for {self.timeout:g} s") from None
            if item is None:
                self._eof = True
            elif isinstance(item, Exception):
                raise TaliLiveError(f"reading the pipe failed: {type(item).__name__}: {item}") from item
            else:
                self._buffer += item
                self._received += len(item)
            if n >= 0 and self._buffer:
                break  # give FFmpeg what there is; it asks again
        size = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def open_source(
    source: Any,
    *,
    timeout: float,
    open_timeout: float | None = None,
    follow: bool = False,
    format: str | None = None,
    options: dict[str, str] | None = None,
) -> av.container.InputContainer:
    """An opened input container; raises typed errors, never blocks past the timeouts."""
    opts = dict(options or {})
    if follow:
        opts.setdefault("follow", "1")
    try:
        if isinstance(source, str | os.PathLike):
            return av.open(
                os.fspath(source),
                mode="r",
                format=format,
                options=opts,
                timeout=(open_timeout or timeout, timeout),
            )
        if hasattr(source, "read"):
            reader = source if isinstance(source, TimedReader) else TimedReader(source, timeout)
            try:
                container = av.open(reader, mode="r", format=format, options=opts)
            except (av.FFmpegError, OSError, ValueError):
                if reader.error is not None:
                    raise reader.error from None
                raise
            # Probing may read seconds of a paced stream without a packet: the no-packet
            # clock starts once the source is open (FFmpeg's probe size bounds the open).
            reader.opening = False
            reader.packet()
            if reader.error is not None:
                container.close()
                raise reader.error
            return container
    except TaliLiveError:
        raise
    except av.ExitError as exc:
        raise TaliStreamStalledError(
            f"opening {source!r} timed out after {open_timeout or timeout:g} s"
        ) from exc
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise TaliLiveError(f"cannot open live source {source!r}: {type(exc).__name__}: {exc}") from exc
    raise TaliConfigError(
        f"a live source is a URL, a path or a readable file object, got {type(source).__name__}"
    )
