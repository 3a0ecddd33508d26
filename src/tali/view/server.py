"""Serving the viewer with uvicorn: loopback by default, a pre-bound socket (so the URL,
port 0 included, is known before the first request), and a clean stop from another thread.

>>> with ViewerServer(catalog, port=0) as server:   # a thread; stops on exit
...     print(server.url)                             # http://127.0.0.1:PORT/row/train/0
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Self

from tali.errors import TaliConfigError
from tali.view.app import PerSource, ViewLimits, create_app, starlette
from tali.view.catalog import Catalog
from tali.view.guard import allowed_host_names, bounded_protocol

__all__ = ["ViewerServer", "check_host", "default_max_connections", "is_loopback"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, *, allow_remote: bool) -> None:
    """Refuse a non-loopback address unless the caller opted in: the viewer serves every row
    of its sources to whoever can connect, and has no login."""
    if not is_loopback(host) and not allow_remote:
        raise TaliConfigError(
            f"refusing to listen on {host}: anyone who can reach it could read the dataset; "
            "pass --allow-remote to serve other machines (default: 127.0.0.1)"
        )


_BACKLOG = 128


def default_max_connections() -> int:
    """Half the process's file-descriptor limit (at most 512): the other half stays for the
    shards, clips and worker threads (at ``ulimit -n 1024``: 512 connections)."""
    try:
        import resource
    except ImportError:  # Windows: no per-process descriptor limit to share
        return 512
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 512
    return max(16, min(512, soft // 2))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "; pass --port 0 for a free one" if exc.errno in (98, 48, 10048) else ""
        raise TaliConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.listen(_BACKLOG)
    sock.set_inheritable(True)
    return sock


class ViewerServer:
    """uvicorn serving the viewer app on ``host:port`` (``port=0``: a free port)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        metrics: PerSource = None,
        report: PerSource = None,
        allow_remote: bool = False,
        allowed_hosts: Sequence[str] = (),
        limits: ViewLimits | None = None,
        header_timeout: float = 10.0,
        max_connections: int | None = None,
        selections: str | os.PathLike[str] | None = None,
        log_level: str = "warning",
    ) -> None:
        starlette()
        import uvicorn

        check_host(host, allow_remote=allow_remote)
        if not 0 <= port <= 65535:
            raise TaliConfigError(f"port {port} is not in 0..65535")
        # Every bind: only Host headers naming this server (DNS-rebinding guard), [::1] included.
        self.allowed_hosts = allowed_host_names(host, allowed_hosts)
        self.app = create_app(
            catalog,
            metrics=metrics,
            report=report,
            allowed_hosts=self.allowed_hosts,
            limits=limits,
            selections=selections,
        )
        self.catalog = catalog
        self.socket = _bind(host, port)
        self.host, self.port = host, self.socket.getsockname()[1]
        if max_connections is None:
            max_connections = default_max_connections()
        protocol = bounded_protocol(header_timeout=header_timeout, max_connections=max_connections)
        config = uvicorn.Config(
            self.app,
            http=protocol,
            log_level=log_level,
            lifespan="off",
            access_log=False,
            timeout_keep_alive=5,
            # asyncio accepts up to `backlog` sockets in one go before any connection_made runs:
            # uvicorn's default (2048) would open that many descriptors past the connection cap.
            backlog=_BACKLOG,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The first row of the first split."""
        return f"{self.base_url}/row/{self.catalog.first_split}/0"

    def run(self) -> None:
        """Serve in this thread until Ctrl+C (or :meth:`stop` from another)."""
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def start(self, timeout: float = 30.0) -> Self:
        """Serve from a daemon thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.run, name="tali-view", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise TaliConfigError(f"the viewer did not start on {self.base_url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
