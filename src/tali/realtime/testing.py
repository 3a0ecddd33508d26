"""Live sources for tests and benchmarks: a sample clip as MPEG-TS, served on loopback.

``mpegts_of(mp4, repeat=k)`` remuxes (no re-encoding) a clip ``k`` times back
to back with continuous timestamps, so a 30 s sample clip becomes a 10-minute
stream in a second. :class:`StreamServer` serves bytes over real HTTP
(``http.server``), paced at ``rate`` x real time, optionally stalling (keeping
the connection open, sending nothing) after ``stall_after`` bytes on the first
connection, to exercise timeouts and reconnects.
"""

from __future__ import annotations

import http.server
import io
import threading
import time
from typing import Any, Self

import av

__all__ = ["StreamServer", "mpegts_of", "with_subtitles"]


def mpegts_of(
    mp4: bytes,
    *,
    repeat: int = 1,
    offset_seconds: float = 0.0,
    packets_of: tuple[str, ...] = ("video", "audio"),
) -> tuple[bytes, float]:
    """MPEG-TS bytes of ``mp4`` played ``repeat`` times, and their duration in seconds;
    ``offset_seconds`` is added to every timestamp (two outputs concatenated make a
    timestamp jump or reset, as a live source's restart does). Every stream is declared;
    only the streams of the types in ``packets_of`` carry packets (``("audio",)``: a
    video stream that never sends a frame)."""
    out = io.BytesIO()
    # One pass lasts until its last packet of any stream ends: the next pass starts
    # there, so every stream's timestamps keep increasing.
    # (Encoder priming starts streams before 0: the span runs from the earliest dts.)
    first, last = 0.0, 0.0
    with av.open(io.BytesIO(mp4), "r") as probe:
        for packet in probe.demux():
            if packet.pts is not None and packet.dts is not None and packet.time_base is not None:
                last = max(last, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                first = min(first, float(packet.dts * packet.time_base))
    duration = last - first + 0.05
    with av.open(out, "w", format="mpegts") as dst:
        mapping: dict[int, Any] = {}
        with av.open(io.BytesIO(mp4), "r") as src:
            for stream in src.streams:
                if stream.type in ("video", "audio"):
                    mapping[stream.index] = dst.add_stream_from_template(stream)
        for k in range(repeat):
            with av.open(io.BytesIO(mp4), "r") as src:
                for packet in src.demux():
                    target = mapping.get(packet.stream.index)
                    if target is None or packet.dts is None or packet.stream.type not in packets_of:
                        continue
                    shift = round((k * duration + offset_seconds) / packet.time_base)
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    packet.dts += shift
                    packet.stream = target
                    dst.mux(packet)
    return out.getvalue(), duration * repeat


class StreamServer:
    """``http://127.0.0.1:<port>/stream.ts`` serving ``data`` at ``rate`` x real time
    (``rate=None``: as fast as the client reads); ``loop_seconds``: ``data`` again and
    again for that long (a source that never ends), without a ``Content-Length``."""

    def __init__(
        self,
        data: bytes,
        *,
        seconds: float,
        rate: float | None = None,
        stall_after: int | None = None,
        loop_seconds: float | None = None,
    ) -> None:
        self.data, self.seconds, self.rate, self.stall_after = data, seconds, rate, stall_after
        self.loop_seconds = loop_seconds
        self.connections = 0
        self._stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.connections += 1
                first = server.connections == 1
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                if server.loop_seconds is None:
                    self.send_header("Content-Length", str(len(server.data)))
                self.end_headers()
                chunk = 16 * 188 * 7  # whole TS packets
                start = time.monotonic()
                bytes_per_second = len(server.data) / server.seconds
                size = len(server.data)
                passes = 1 if server.loop_seconds is None else 1 << 62  # looped: until loop_seconds
                try:
                    for n in range(passes):
                        for offset in range(0, size, chunk):
                            if server._stop.is_set():
                                return
                            if (
                                server.loop_seconds is not None
                                and time.monotonic() - start > server.loop_seconds
                            ):
                                return
                            if first and server.stall_after is not None and offset >= server.stall_after:
                                server._stop.wait(60)  # stall: connection open, nothing sent
                                return
                            if server.rate is not None:
                                due = start + (n * size + offset) / bytes_per_second / server.rate
                                delay = due - time.monotonic()
                                if delay > 0:
                                    time.sleep(delay)
                            self.wfile.write(server.data[offset : offset + chunk])
                            self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.ts"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def with_subtitles(mp4: bytes, lines: list[tuple[float, float, str]]) -> bytes:
    """Matroska bytes of ``mp4``'s video and audio plus a SubRip track of ``lines``
    (``(start, end, text)`` in clip seconds): a live source that carries subtitles.
    PyAV cannot encode subtitles, so the track is demuxed from an SRT document."""

    def stamp(t: float) -> str:
        ms = round(t * 1000)
        h, ms = divmod(ms, 3_600_000)
        m, ms = divmod(ms, 60_000)
        sec, ms = divmod(ms, 1000)
        return f"{h:02d}:{m:02d}:{sec:02d},{ms:03d}"

    srt = "".join(f"{i + 1}\n{stamp(a)} --> {stamp(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(lines))
    out = io.BytesIO()
    with (
        av.open(io.BytesIO(mp4), "r") as src,
        av.open(io.BytesIO(srt.encode()), "r", format="srt") as sub,
        av.open(out, "w", format="matroska") as dst,
    ):
        mapping = {
            s.index: dst.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")
        }
        track = dst.add_stream_from_template(sub.streams.subtitles[0])
        packets = []
        for packet in src.demux():
            if packet.dts is not None and packet.stream.index in mapping:
                packet.stream = mapping[packet.stream.index]
                packets.append(packet)
        for packet in sub.demux():
            if packet.dts is not None:
                packet.stream = track
                packets.append(packet)
        packets.sort(key=lambda p: float((p.dts or 0) * (p.time_base or 0)))  # interleaved by time (dts set)
        for packet in packets:
            dst.mux(packet)
    return out.getvalue()
