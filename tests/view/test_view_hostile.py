"""The viewer under hostile requests, each planted against a real uvicorn server on loopback:
DNS rebinding on every bind, cross-site and costly requests, a flood of heavy decodes, idle
connections past the descriptor limit, and malformed ``Range`` headers."""

from __future__ import annotations

import functools
import http.server
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tali.errors import TaliConfigError
from tali.view import Catalog, ViewerServer
from tali.view.app import ViewLimits
from tali.view.media import RangeNotSatisfiable, byte_range

OWN = {"X-Tali-View": "1"}


def _can_bind(host: str) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
def test_the_host_header_is_checked_on_every_bind(catalog: Catalog, host: str) -> None:
    """Every bind checks Host (before: not with ``--host ::1``). 127.0.0.2 is a loopback
    address other than the default that Linux always has; ``::1`` needs IPv6 loopback, and
    where the machine has none the viewer's refusal to bind it is what is checked."""
    if not _can_bind(host):
        with pytest.raises(TaliConfigError, match=re.escape(host)):
            ViewerServer(catalog, host=host, port=0)
        return
    with ViewerServer(catalog, host=host, port=0) as server:
        url = f"{server.base_url}/api/row/train/0"
        good = httpx.get(url, timeout=30)
        assert good.status_code == 200 and good.json()["index"] == 0
        rebinds = ("rebind.attacker.example", "rebind.attacker.example:8765", "[::2]", "127.0.0.3", "")
        for rebound in rebinds:
            response = httpx.get(url, headers={"Host": rebound}, timeout=30)
            assert response.status_code == 400, (host, rebound)
            assert "invalid Host header" in response.json()["error"]
        bound = f"[{host}]" if ":" in host else host
        for named in (
            f"localhost:{server.port}",
            f"[::1]:{server.port}",
            f"127.0.0.1:{server.port}",
            f"{bound}:{server.port}",
        ):
            assert httpx.get(url, headers={"Host": named}, timeout=30).status_code == 200, named


def test_costly_and_cross_site_requests_need_the_viewers_own_page(server: ViewerServer) -> None:
    bomb = "length(printf('%0100000000d', 1)) > 0"  # what a hostile page would send
    filter_url = f"{server.base_url}/api/filter"
    params = {"split": "train", "where": "item_idx % 2 = 0"}
    for headers in (
        {},  # an <img src> from an old browser: no Origin, no Sec-Fetch-Site
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port on localhost
        {"Origin": "http://evil.example", **OWN},
        {"Origin": "null", **OWN},
    ):
        response = httpx.get(filter_url, params={**params, "where": bomb}, headers=headers, timeout=30)
        assert response.status_code == 403, headers
        assert "viewer" in response.json()["error"]
    own_origin = {"Origin": server.base_url}
    for headers in (OWN, own_origin, {"Sec-Fetch-Site": "same-origin"}):
        response = httpx.get(filter_url, params=params, headers=headers, timeout=60)
        assert response.status_code == 200, (headers, response.text)
        assert response.json()["indices"] == list(range(0, 16, 2))
    # Media a cross-site page embeds is refused where the browser says so; the page's own loads pass.
    frame = f"{server.base_url}/media/train/0/frame/0.png"
    assert httpx.get(frame, headers={"Sec-Fetch-Site": "cross-site"}, timeout=30).status_code == 403
    assert httpx.get(frame, headers={"Sec-Fetch-Site": "same-origin"}, timeout=60).status_code == 200
    # A POST (state-changing) from elsewhere is refused before any route runs.
    post = httpx.post(f"{server.base_url}/api/selection/x", json={"indices": [0]}, timeout=30)
    assert post.status_code == 403


def test_heavy_requests_queue_then_get_503_and_cheap_ones_stay_fast(sample_root: Path) -> None:
    limits = ViewLimits(decode_slots=1, decode_queue=3, wait_seconds=60)
    with ViewerServer(Catalog([sample_root]), port=0, limits=limits) as server:
        statuses: list[tuple[int, str | None]] = []
        start = threading.Barrier(17)

        def heavy(k: int) -> None:
            start.wait(30)
            # A different seed and row each: nothing is served from the window cache.
            url = f"{server.base_url}/api/window/train/{k % 16}?seconds=whole&num_frames=64&size=512&seed={k}"
            response = httpx.get(url, headers=OWN, timeout=120)
            statuses.append((response.status_code, response.headers.get("retry-after")))

        threads = [threading.Thread(target=heavy, args=(k,)) for k in range(16)]
        for thread in threads:
            thread.start()
        start.wait(30)
        cheap: list[float] = []
        for _ in range(5):  # while the decodes run and queue
            began = time.monotonic()
            assert httpx.get(f"{server.base_url}/api/splits", timeout=30).status_code == 200
            cheap.append(time.monotonic() - began)
            time.sleep(0.1)
        for thread in threads:
            thread.join(180)
        assert len(statuses) == 16
        served = [s for s, _ in statuses if s == 200]
        refused = [retry for s, retry in statuses if s == 503]
        assert len(served) + len(refused) == 16
        assert len(served) >= 2  # the running one and at least one from the queue
        assert len(refused) >= 16 - 1 - 3 - 4 and all(r is not None and int(r) >= 1 for r in refused)
        # 24-28 s each before the queue (40 requests); now the event loop answers at once, but
        # shares the GIL with the decode thread on a loaded 2-core machine (worst seen: 2.7 s).
        assert sorted(cheap)[2] < 1.5 and max(cheap) < 8.0, cheap


def test_idle_connections_are_closed_after_the_header_timeout(catalog: Catalog) -> None:
    with ViewerServer(catalog, port=0, header_timeout=0.5) as server:
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow.sendall(b"GET /api/splits HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finishes its headers
        try:
            for sock in (idle, slow):
                assert sock.recv(1024) == b""  # closed by the server, well before the 10 s timeout
        finally:
            idle.close()
            slow.close()
        assert httpx.get(f"{server.base_url}/api/splits", timeout=30).status_code == 200


def test_1100_idle_connections_at_ulimit_1024_do_not_stop_it_answering(sample_root: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    view = [sys.executable, "-m", "tali.cli.main", "view", str(sample_root), "--port", "0"]
    command = ["bash", "-c", 'ulimit -n 1024 && exec "$0" "$@"', *view]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sockets: list[socket.socket] = []
    try:
        lines = [process.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        port = int(lines[1].split("127.0.0.1:")[1].split("/")[0])
        for k in range(1100):
            sock = socket.socket()
            sock.settimeout(5)
            try:
                sock.connect(("127.0.0.1", port))
                if k % 2:
                    sock.sendall(b"GET / HTTP/1.1\r\n")  # half of them start a request and stall
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        assert len(sockets) >= 1000
        began = time.monotonic()
        response = httpx.get(f"http://127.0.0.1:{port}/api/splits", timeout=20)
        assert response.status_code == 200 and response.json()["first"]["split"] == "train"
        assert time.monotonic() - began < 10
        assert Path(f"/proc/{process.pid}/limits").read_text().count("1024") >= 1
        open_fds = len(os.listdir(f"/proc/{process.pid}/fd"))
        assert open_fds < 1024 - 100, open_fds  # the cap (512 at this limit) keeps headroom
    finally:
        for sock in sockets:
            sock.close()
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize(
    "header",
    [
        "bytes=abc",
        "bytes=-",
        "bytes=5-1",
        "bytes=--1",
        "bytes=1-2-3",
        "bytes=١-٢",  # Arabic-Indic digits: \\d would take them
        "bytes=" + "9" * 5000 + "-",  # int() of 5,000 digits raises: was a 500
        "bytes=0-" + "9" * 5000,
        "bytes=,",
        "bytes=0-1,x",
        "bytes= 1 - 2",
        "garbage",
        "bytes=999999999999999999999-",
    ],
)
def test_every_malformed_range_gets_416(server: ViewerServer, header: str) -> None:
    size = len(httpx.get(f"{server.base_url}/media/train/1/video.mp4", timeout=30).content)
    response = httpx.get(
        f"{server.base_url}/media/train/1/video.mp4", headers={"Range": header.encode()}, timeout=30
    )
    assert response.status_code == 416, header[:40]
    assert response.headers["content-range"] == f"bytes */{size}"
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, size)


def test_well_formed_ranges_still_work(server: ViewerServer) -> None:
    url = f"{server.base_url}/media/train/1/video.mp4"
    size = len(httpx.get(url, timeout=30).content)
    assert httpx.get(url, headers={"Range": "bytes=0-1, 5-9"}, timeout=30).status_code == 200  # ignored
    assert httpx.get(url, headers={"Range": "items=0-5"}, timeout=30).status_code == 200  # another unit
    part = httpx.get(url, headers={"Range": "bytes=0-99999999999999999999999"}, timeout=30)
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 0-{size - 1}/{size}"


@pytest.mark.xdist_group("browser")
@pytest.mark.browser
def test_a_page_on_another_site_cannot_run_queries_or_save_in_chromium(
    page: Any, catalog: Catalog, tmp_path: Path
) -> None:
    """Another site's page (served from ``localhost``, a different site from ``127.0.0.1``)
    embeds and fetches the viewer's costly routes the ways a browser allows without CORS."""
    folder = tmp_path / "selections"
    with ViewerServer(catalog, port=0, selections=folder) as viewer:
        target = viewer.base_url
        bomb = quote("length(printf('%0100000000d', 1)) > 0")
        (tmp_path / "attack.html").write_text(
            f"""<!doctype html><img src="{target}/api/filter?split=train&where={bomb}">
<img src="{target}/api/gallery?split=train&where={bomb}">
<script>
Promise.allSettled([
  fetch("{target}/api/filter?split=train&where={bomb}", {{mode: "no-cors"}}),
  fetch("{target}/api/search?split=train&q=caption", {{mode: "no-cors"}}),
  fetch("{target}/api/gallery?split=train&where={bomb}", {{mode: "no-cors"}}),
  fetch("{target}/api/selection", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
        body: JSON.stringify({{name: "planted", split: "train", indices: [1]}})}}),
]).then(() => {{ document.body.dataset.done = "1"; }});
</script>"""
        )
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
        attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=attacker.serve_forever, daemon=True)
        thread.start()
        statuses: dict[str, int] = {}
        page.on(
            "response", lambda r: statuses.update({r.url: r.status}) if r.url.startswith(target) else None
        )
        try:
            page.goto(f"http://localhost:{attacker.server_address[1]}/attack.html")
            page.wait_for_function("document.body && document.body.dataset.done === '1'", timeout=30_000)
            page.wait_for_timeout(500)
        finally:
            attacker.shutdown()
            attacker.server_close()
        reached = {url.split("?")[0].removeprefix(target): status for url, status in statuses.items()}
        assert set(reached) >= {"/api/filter", "/api/gallery", "/api/search", "/api/selection"}, reached
        assert set(reached.values()) == {403}, reached
        assert not folder.exists()  # nothing was saved
