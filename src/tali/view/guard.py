"""What keeps one viewer usable and private while any page in the user's browser, or any
local process, can send it requests.

- :class:`RequestGuard` (ASGI): the ``Host`` header must name this server (a DNS-rebinding
  page sends its own name), on every bind, ``[::1]`` included; a request a browser marks as
  cross-site (``Sec-Fetch-Site``, ``Origin``) is refused; a costly or state-changing request
  must show it comes from the viewer's own page (``Origin``, ``Sec-Fetch-Site: same-origin``
  or the ``X-Tali-View`` header its script sends, which another site cannot send without a
  CORS preflight the viewer never grants).
- :class:`WorkQueue`: at most ``slots`` decodes (or SQL queries) run at once, ``queue`` more
  wait up to ``wait_seconds``, the rest are answered 503 with ``Retry-After``; cheap routes
  run on the event loop, so a page of heavy requests never stalls ``/api/splits``.
- :func:`bounded_protocol`: uvicorn's h11 protocol with an idle timeout on connections that
  have not sent a whole request and a cap on open connections (the oldest idle ones are
  closed first), so idle sockets cannot exhaust the process's file descriptors.
"""

from __future__ import annotations

import ipaddress
import json
import math
import socket
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from tali.errors import TaliError

__all__ = [
    "COSTLY_HEADER",
    "RequestGuard",
    "ServerBusy",
    "WorkQueue",
    "allowed_host_names",
    "bounded_protocol",
    "host_name",
]

#: The header the viewer's script sends on costly requests (see :class:`RequestGuard`).
COSTLY_HEADER = "x-tali-view"
T = TypeVar("T")


class ServerBusy(TaliError, RuntimeError):
    """Every slot for this kind of work is taken and the queue is full (HTTP 503)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def host_name(header: str | None) -> str | None:
    """The host part of a ``Host`` header, lower-case (``[::1]:8765`` -> ``::1``), or ``None``
    when it is missing or not a host."""
    if not header or len(header) > 300:
        return None
    text = header.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :] if end > 0 else "?"
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        name = text[1:end]
        try:
            return str(ipaddress.IPv6Address(name))
        except ValueError:
            return None
    name, _, port = text.partition(":")
    if ":" in port or (port and not port.isdigit()):
        return None
    name = name.rstrip(".")
    return name or None


def allowed_host_names(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """``Host`` names a server bound to ``host`` answers: the loopback names, the bound address
    and, for a wildcard bind (``0.0.0.0``, ``::``), this machine's names and addresses."""
    names = {"localhost", "127.0.0.1", "::1"}
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        names.add(host.lower().rstrip("."))
    else:
        if address.is_unspecified:
            hostname = socket.gethostname()
            names.update({hostname.lower(), socket.getfqdn().lower()})
            try:
                infos = socket.getaddrinfo(hostname, None)
            except OSError:
                infos = []
            names.update(str(info[4][0]).split("%")[0] for info in infos)
        else:
            names.add(str(address))
    names.update(e.lower().rstrip(".") for e in extra)
    return frozenset(names)


class RequestGuard:
    """ASGI middleware: the ``Host`` and same-origin checks above. ``allowed_hosts=None``
    skips the Host check (an app mounted behind something that did it)."""

    def __init__(
        self, app: Any, *, allowed_hosts: Iterable[str] | None, costly: Callable[[str], bool]
    ) -> None:
        self.app = app
        self.allowed = frozenset(allowed_hosts) if allowed_hosts is not None else None
        self.costly = costly

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        refusal = self.refusal(scope["method"], scope["path"], headers, scope.get("scheme", "http"))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def refusal(self, method: str, path: str, headers: dict[str, str], scheme: str) -> tuple[int, str] | None:
        raw_host = headers.get("host", "")
        name = host_name(raw_host)
        if self.allowed is not None and (name is None or name not in self.allowed):
            return (
                400,
                (
                    f"invalid Host header {raw_host[:80]!r}: this viewer answers only "
                    f"{', '.join(sorted(self.allowed))} (tali view --allowed-host NAME adds one)"
                ),
            )
        own_origin = f"{scheme}://{raw_host.strip().lower()}"
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return 403, f"refused a {site} request: the viewer answers only its own pages"
        if origin is not None and origin.lower() != own_origin:
            return (
                403,
                f"refused a request from origin {origin[:80]!r}: the viewer answers only its own pages",
            )
        vouched = origin is not None or site == "same-origin" or COSTLY_HEADER in headers
        if (method not in ("GET", "HEAD") or self.costly(path)) and not vouched:
            return 403, (
                f"{method} {path[:80]} runs queries or changes state: send it from the viewer's page "
                f"(Origin or the {COSTLY_HEADER} header)"
            )
        return None


class WorkQueue:
    """At most ``slots`` calls of one kind run in worker threads; up to ``queue`` more wait,
    each at most ``wait_seconds``; beyond that :class:`ServerBusy`."""

    def __init__(self, name: str, *, slots: int, queue: int, wait_seconds: float) -> None:
        if slots < 1 or queue < 0 or wait_seconds <= 0:
            raise ValueError(f"bad work queue {name}: slots={slots} queue={queue} wait={wait_seconds}")
        self.name, self.slots, self.queue, self.wait_seconds = name, slots, queue, wait_seconds
        self._limiter: Any = None  # an anyio CapacityLimiter, made inside the event loop
        self.waiting = 0
        self.refused = 0

    def _busy(self) -> ServerBusy:
        self.refused += 1
        retry = max(1, math.ceil(self.wait_seconds / 4))
        return ServerBusy(
            f"the viewer is busy ({self.slots} {self.name} running, {self.waiting} waiting); retry in {retry} s",
            retry,
        )

    async def run(self, fn: Callable[[], T]) -> T:
        import anyio
        import anyio.to_thread

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.slots)
        if self.waiting >= self.queue and self._limiter.available_tokens == 0:
            raise self._busy()
        self.waiting += 1
        try:
            with anyio.move_on_after(self.wait_seconds) as waited:
                await self._limiter.acquire()
            if waited.cancelled_caught:
                raise self._busy()
        finally:
            self.waiting -= 1
        try:
            return await anyio.to_thread.run_sync(fn)
        finally:
            self._limiter.release()


def bounded_protocol(*, header_timeout: float, max_connections: int) -> type:
    """A uvicorn h11 protocol class that closes a connection which has not sent a whole
    request within ``header_timeout`` seconds of connecting or of its last response, and
    keeps at most ``max_connections`` open (closing the oldest idle ones, else the new one)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11Protocol(H11Protocol):  # type: ignore[misc]
        _serial = 0

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            BoundedH11Protocol._serial += 1
            self._opened = BoundedH11Protocol._serial
            self._idle_timer: Any = None
            self._arm()
            over = len(self.connections) - max_connections
            if over > 0:
                peers: list[Any] = [c for c in self.connections if c is not self]
                idle = sorted(
                    (c for c in peers if getattr(c, "_idle", lambda: False)()), key=lambda c: c._opened
                )
                for old in idle[:over]:
                    old._drop()
                if len(self.connections) > max_connections:
                    self._drop()

        def _idle(self) -> bool:
            return self.cycle is None or bool(self.cycle.response_complete)

        def _arm(self) -> None:
            if self._idle_timer is None:
                self._idle_timer = self.loop.call_later(header_timeout, self._expire)

        def _expire(self) -> None:
            self._idle_timer = None
            if self._idle():
                self._drop()

        def _drop(self) -> None:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            self.connections.discard(self)
            if not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._idle() and not self.transport.is_closing():
                self._arm()  # a request under way: it has header_timeout to arrive whole

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None  # uvicorn's keep-alive timeout takes over

        def connection_lost(self, exc: Exception | None) -> None:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            super().connection_lost(exc)

    return BoundedH11Protocol
