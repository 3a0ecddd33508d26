"""Whether and where the Hub can be reached: ``HF_HUB_OFFLINE``, the endpoint, one bounded probe.

Stdlib only (``huggingface_hub``'s constants read lazily), below everything that talks to the
Hub: the downloader (:mod:`tali.hub`) and the model processors' asset loading both ask here.
"""

from __future__ import annotations

import os

__all__ = ["endpoint_of", "offline", "reachable"]


def offline() -> bool:
    """``HF_HUB_OFFLINE`` as ``huggingface_hub`` reads it (at its import) or as set since."""
    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().upper() in ("1", "ON", "YES", "TRUE")
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a core dependency
        return False
    return bool(constants.HF_HUB_OFFLINE)


def endpoint_of(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def reachable(endpoint: str | None = None, timeout: float = 3.0) -> str | None:
    """``None`` when a TCP connection to the Hub endpoint opens within ``timeout``
    seconds (name resolution included); else why not. One cheap probe, used before
    clients that would otherwise retry an unreachable Hub for most of a minute."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint_of(endpoint))
    port = url.port or (443 if url.scheme == "https" else 80)

    def connect() -> None:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()

    try:
        _bounded(connect, timeout + 0.5)  # getaddrinfo itself has no timeout
    except (OSError, TimeoutError) as exc:
        return f"cannot connect to {url.scheme}://{url.netloc} ({type(exc).__name__}: {exc})"
    return None


def _bounded(call, seconds: float | None):
    """``call()`` in a daemon thread, abandoned after ``seconds``: ``list_repo_tree`` takes no
    timeout and the client's default is none, so a Hub that accepts and never answers would
    otherwise hang the caller forever. A daemon thread does not hold up interpreter exit."""
    if seconds is None:
        return call()
    import threading

    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="tali-hub-metadata")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]
