"""A loopback HTTP server that speaks the Hub endpoints ``huggingface_hub`` calls.

Used by the tests and the benchmarks (the real Hub is never reached from them).
Serves a local directory as ``<repo_id>`` at ``main`` (every file: shards,
``metadata/``, ``README.md`` whose card comes back as ``cardData``,
``.gitattributes``) and more trees as other revisions (``refs/convert/parquet``),
with an optional injected latency per request:

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
import os
import re
import threading
import time
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


def _tree(root: Path) -> dict[str, Path]:
    """Every file a repo at ``root`` holds (hidden ones but ``.gitattributes`` are not in it)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and (rel == ".gitattributes" or not any(x.startswith(".") for x in rel.split("/"))):
            out[rel] = p
    return out


class _Sha(dict):
    """sha256 per repo path, computed on first use and shared by hard links (600 linked shards
    hash once)."""

    def __init__(self, files: dict[str, Path]) -> None:
        super().__init__()
        self._files = files
        self._by_inode: dict[tuple[int, int], str] = {}

    def __missing__(self, name: str) -> str:
        path = self._files[name]
        st = path.stat()
        key = (st.st_dev, st.st_ino)
        if key not in self._by_inode:
            self._by_inode[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        self[name] = self._by_inode[key]
        return self[name]


class HubServer:
    def __init__(
        self,
        root: Path,
        repo_id: str = "Antreas/TALI",
        *,
        revisions: dict[str, Path] | None = None,
        latency: float = 0.0,
    ) -> None:
        self.root = Path(root)
        self.repo_id = repo_id
        self.latency = float(latency)
        self.trees = {"main": _tree(self.root)}
        for rev, tree_root in (revisions or {}).items():
            self.trees[rev] = _tree(Path(tree_root))
        self.commits = {
            rev: COMMIT if rev == "main" else hashlib.sha1(rev.encode()).hexdigest() for rev in self.trees
        }
        self.files = self.trees["main"]
        self.sha = _Sha(
            {f"{rev}:{k}" if rev != "main" else k: v for rev, t in self.trees.items() for k, v in t.items()}
        )
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

    def revision(self, rev: str) -> str | None:
        """The tree name a revision (branch or commit) points at."""
        if rev in self.trees:
            return rev
        return next((name for name, commit in self.commits.items() if commit == rev), None)

    def card_data(self) -> dict | None:
        readme = self.files.get("README.md")
        if readme is None:
            return None
        from huggingface_hub import DatasetCard

        return DatasetCard(readme.read_text()).data.to_dict() or None

    def tree(self, prefix: str, recursive: bool, rev: str = "main") -> list[dict]:
        """Entries under ``prefix`` as the Hub's tree API lists them (directories too)."""
        entries: dict[str, dict] = {}
        key = "" if rev == "main" else f"{rev}:"
        for name, p in self.trees[rev].items():
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
                "oid": self.sha[key + name][:40],
                "lfs": {"oid": self.sha[key + name], "size": size, "pointerSize": 134},
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
        # matched on the raw path: a revision such as refs%2Fconvert%2Fparquet holds slashes
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
                if server.latency:
                    time.sleep(server.latency)
                path = urlparse(self.path).path
                if m := info_re.match(path):
                    rev = server.revision(unquote(m["rev"] or "main"))
                    if rev is None:
                        return self._error(404, f"revision not found: {m['rev']}")
                    body = {
                        "id": server.repo_id,
                        "sha": server.commits[rev],
                        "private": False,
                        "siblings": [{"rfilename": n} for n in server.trees[rev]],
                    }
                    if rev == "main" and (card := server.card_data()):
                        body["cardData"] = card
                    return self._json(body)
                if m := tree_re.match(path):
                    rev = server.revision(unquote(m["rev"]))
                    if rev is None:
                        return self._error(404, f"revision not found: {m['rev']}")
                    prefix = unquote(m["path"] or "").strip("/")
                    recursive = "recursive=true" in self.path.lower()
                    return self._json(server.tree(prefix, recursive, rev))
                if m := resolve_re.match(path):
                    rev = server.revision(unquote(m["rev"]))
                    if rev is None:
                        return self._error(404, f"revision not found: {m['rev']}")
                    return self._file(unquote(m["path"]), rev)
                self._error(404, f"no route for {unquote(path)}")

            def _file(self, name: str, rev: str = "main") -> None:
                files = server.trees[rev]
                key = name if rev == "main" else f"{rev}:{name}"
                if name not in files:
                    return self._error(404, f"entry not found: {name}")
                fault = None
                if self.command == "GET" and server.faults[name]:
                    fault = server.faults[name].popleft()
                if fault in ("429", "503"):
                    return self._error(int(fault), "slow down" if fault == "429" else "unavailable", "0")
                with open(files[name], "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    start, end, status = 0, size - 1, 200
                    rng = self.headers.get("Range")
                    if rng and (m := re.match(r"bytes=(\d+)-(\d*)", rng)):
                        start, status = int(m.group(1)), 206
                        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                    fh.seek(start)
                    # a range is read, not the file: 600 shards of GBs are served this way
                    data = fh.read(max(0, end + 1 - start)) if self.command == "GET" else b""
                if fault == "corrupt" and start < 64:
                    data = bytes(b ^ 0xFF for b in data[: 64 - start]) + data[64 - start :]
                body = data
                self.send_response(status)
                self.send_header("Content-Length", str(end + 1 - start))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", f'"{server.sha[key][:40]}"')
                self.send_header("X-Linked-Etag", f'"{server.sha[key]}"')
                self.send_header("X-Linked-Size", str(size))
                self.send_header("X-Repo-Commit", server.commits[rev])
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
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
