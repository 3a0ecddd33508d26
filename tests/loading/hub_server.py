"""A loopback HTTP server that speaks the Hub endpoints ``huggingface_hub`` calls.

Serves a local directory in the Hub's dataset layout as ``<repo_id>``:

- ``GET  /api/datasets/<repo>/revision/<rev>``      repo info with the commit sha
- ``GET  /api/datasets/<repo>/tree/<rev>/<path>``   listing (files with size and LFS sha256, directories)
- ``HEAD /datasets/<repo>/resolve/<rev>/<path>``    ETag / X-Linked-Etag / X-Linked-Size / X-Repo-Commit
- ``GET  /datasets/<repo>/resolve/<rev>/<path>``    the bytes, honouring ``Range: bytes=N-`` and ``N-M``

Every request is logged, and faults can be queued per file (``429``, ``503``,
``corrupt``: same size, flipped bytes, ``stall``: send half then hang until
released), so tests can assert what the real client did.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    status: int
    sent: int


class HubServer:
    def __init__(self, root: Path, repo_id: str = "Antreas/TALI") -> None:
        self.root = Path(root)
        self.repo_id = repo_id
        self.files = {
            str(p.relative_to(self.root)): p for p in sorted((self.root / "data").glob("*.parquet"))
        }
        self.sha = {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in self.files.items()}
        self.log: list[Request] = []
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.stalled = threading.Event()  # set once a stalled transfer has sent its first half
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def tree(self, prefix: str, recursive: bool) -> list[dict]:
        """Entries under ``prefix`` as the Hub's tree API lists them (directories too)."""
        entries: dict[str, dict] = {}
        for name, p in self.files.items():
            if prefix and not name.startswith(prefix + "/"):
                continue
            rest = name[len(prefix) + 1 :] if prefix else name
            if not recursive and "/" in rest:
                directory = (prefix + "/" if prefix else "") + rest.split("/")[0]
                entries[directory] = {"type": "directory", "path": directory, "oid": "0" * 40, "size": 0}
                continue
            size = p.stat().st_size
            entries[name] = {
                "type": "file",
                "path": name,
                "size": size,
                "oid": self.sha[name][:40],
                "lfs": {"oid": self.sha[name], "size": size, "pointerSize": 134},
            }
        return list(entries.values())

    def downloads(self, name: str | None = None) -> list[Request]:
        """GET requests for file bytes that were answered with data."""
        return [
            r
            for r in self.log
            if r.method == "GET"
            and "/resolve/" in r.path
            and r.status in (200, 206)
            and (name is None or r.path.endswith(name))
        ]

    def _record(self, request: Request) -> None:
        with self._lock:
            self.log.append(request)

    def _handler(self):
        server = self
        repo = re.escape(self.repo_id)
        info_re = re.compile(rf"^/api/datasets/{repo}(?:/revision/(?P<rev>[^/]+))?$")
        tree_re = re.compile(rf"^/api/datasets/{repo}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
        resolve_re = re.compile(rf"^/datasets/{repo}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _json(self, body: object, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                server._record(Request(self.command, self.path, None, status, len(data)))

            def _error(self, status: int, message: str, retry_after: str | None = None) -> None:
                data = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Error-Message", message)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                server._record(Request(self.command, self.path, self.headers.get("Range"), status, 0))

            def do_GET(self) -> None:
                self._serve()

            def do_HEAD(self) -> None:
                self._serve()

            def _serve(self) -> None:
                path = unquote(urlparse(self.path).path)
                if m := info_re.match(path):
                    return self._json(
                        {
                            "id": server.repo_id,
                            "sha": COMMIT,
                            "private": False,
                            "siblings": [{"rfilename": n} for n in server.files],
                        }
                    )
                if m := tree_re.match(path):
                    prefix = (m["path"] or "").strip("/")
                    recursive = "recursive=true" in self.path.lower()
                    return self._json(server.tree(prefix, recursive))
                if m := resolve_re.match(path):
                    return self._file(m["path"])
                self._error(404, f"no route for {path}")

            def _file(self, name: str) -> None:
                if name not in server.files:
                    return self._error(404, f"entry not found: {name}")
                fault = None
                if self.command == "GET" and server.faults[name]:
                    fault = server.faults[name].popleft()
                if fault in ("429", "503"):
                    return self._error(int(fault), "slow down" if fault == "429" else "unavailable", "0")
                data = server.files[name].read_bytes()
                if fault == "corrupt":
                    data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                start, end, status = 0, len(data) - 1, 200
                rng = self.headers.get("Range")
                if rng and (m := re.match(r"bytes=(\d+)-(\d*)", rng)):
                    start, status = int(m.group(1)), 206
                    end = min(int(m.group(2)), len(data) - 1) if m.group(2) else len(data) - 1
                body = data[start : end + 1]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", f'"{server.sha[name][:40]}"')
                self.send_header("X-Linked-Etag", f'"{server.sha[name]}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("X-Repo-Commit", COMMIT)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.end_headers()
                sent = 0
                if self.command == "GET":
                    try:
                        if fault == "stall":
                            half = len(body) // 2
                            self.wfile.write(body[:half])
                            self.wfile.flush()
                            sent = half
                            server.stalled.set()
                            server.release.wait(60)
                            self.close_connection = True
                            return
                        self.wfile.write(body)
                        sent = len(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    finally:
                        server._record(Request(self.command, self.path, rng, status, sent))
                else:
                    server._record(Request(self.command, self.path, rng, status, 0))

        return Handler
