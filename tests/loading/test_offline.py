"""Offline and unreachable Hubs fail fast with a message that says what to do;
a path typo is a local-path error, not a Hub request."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import huggingface_hub.constants  # noqa: F401 - read HF_HUB_OFFLINE (at import) before a test sets it
import pytest

import tali
import tali.loading  # imported here so the timings below measure calls, not imports
from tali.errors import TaliSourceError

REPO = "Antreas/TALI"
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TALI_CACHE_DIR", str(tmp_path / "tali-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path


@pytest.fixture()
def closed_port():
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture()
def silent_server():
    """Accepts connections and never answers (a Hub behind a black-holing proxy)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def _timed(call):
    start = time.monotonic()
    with pytest.raises(TaliSourceError) as info:
        call()
    return time.monotonic() - start, str(info.value)


def test_offline_without_a_cached_copy_fails_at_once(env, monkeypatch, closed_port):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    seconds, message = _timed(
        lambda: tali.hub.download(
            REPO, split="val", cache_dir=env / "hf", endpoint=closed_port, progress=False
        )
    )
    assert seconds < 2.0, seconds
    assert "HF_HUB_OFFLINE is set and no shards of Antreas/TALI@main split 'val'" in message
    assert str(env / "hf") in message and "refs/main" in message  # what was looked for
    seconds, message = _timed(lambda: tali.load(REPO, split="val", cache_dir=env / "hf", progress=False))
    assert seconds < 2.0 and "HF_HUB_OFFLINE" in message


def test_offline_serves_what_an_earlier_download_left(hub, env, monkeypatch):
    online = tali.hub.download(
        REPO, split="train", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False
    )
    requests = len(hub.log)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    report = tali.hub.download(
        REPO, split="train[:50%]", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False
    )
    assert len(hub.log) == requests, "offline mode made a request"
    assert report.files == online.files[:1] and report.commit == online.commit
    stream = tali.load(REPO, split="train", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False)
    assert len(stream.files) == 2


def test_a_refused_connection_fails_without_retries(env, closed_port):
    seconds, message = _timed(
        lambda: tali.hub.download(
            REPO, split="val", cache_dir=env / "hf", endpoint=closed_port, progress=False
        )
    )
    assert seconds < 5.0, seconds  # the default would have retried 5 times: 1+2+4+8+16 s
    assert f"the Hub at {closed_port} is unreachable" in message and "HF_HUB_OFFLINE=1" in message


def test_a_hub_that_never_answers_fails_after_the_timeout(env, silent_server):
    seconds, message = _timed(
        lambda: tali.hub.download(
            REPO, split="val", cache_dir=env / "hf", endpoint=silent_server, progress=False, timeout=1.0
        )
    )
    assert 0.9 < seconds < 6.0, seconds
    assert "is unreachable" in message


@pytest.mark.parametrize("text", ["data/TALI", "./TALI", "~/no/such/TALI", "TALI", "x/y/z", "shard.parquet"])
def test_a_missing_local_path_is_not_sent_to_the_hub(env, monkeypatch, text, closed_port):
    monkeypatch.setenv("HF_ENDPOINT", closed_port)
    seconds, message = _timed(lambda: tali.load(text, split="train"))
    assert seconds < 1.0
    assert f"no such local path {text!r} (looked for " in message
    assert "Hub dataset id such as 'Antreas/TALI'" in message


def test_an_unknown_hub_repo_also_says_it_is_no_local_path(hub, env):
    with pytest.raises(TaliSourceError, match=r"404.*'someone/else' is not a local path either: looked for"):
        tali.load("someone/else", split="train", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False)
    with pytest.raises(  # streaming (the default) and downloading say the same
        TaliSourceError, match=r"HTTP 404.*'someone/else' is not a local path either: looked for"
    ):
        tali.load(
            "someone/else",
            split="train",
            cache_dir=env / "hf",
            endpoint=hub.endpoint,
            progress=False,
            download=True,
        )


def test_default_processors_on_an_unreachable_hub_fail_fast(tmp_path, closed_port):
    probe = (
        "import time\n"
        "from transformers import CLIPImageProcessor, CLIPTokenizer, WhisperFeatureExtractor\n"
        "from tali.processors import default_processors\n"
        "from tali.errors import TaliModelAssetError\n"
        "t = time.monotonic()\n"
        "try:\n    default_processors()\n"
        "except TaliModelAssetError as exc:\n    print(round(time.monotonic() - t, 2), exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(PYTHONPATH=SRC, HF_ENDPOINT=closed_port, HF_HOME=str(tmp_path / "empty"))
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seconds, _, message = done.stdout.strip().partition(" ")
    assert float(seconds) < 5.0, done.stdout  # imports excluded; was 53 s of retries
    assert "the Hub was not asked: cannot connect to" in message and "hf download" in message


def test_download_command_offline_is_one_line(env, closed_port):
    env_vars = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", "HF_HOME": str(env / "hf-home")}
    done = subprocess.run(
        [sys.executable, "-m", "tali.cli.main", "download", "--split", "val"],
        env=env_vars, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tali download: error: HF_HUB_OFFLINE is set"), done.stderr


def test_offline_streaming_from_the_hub_reads_the_cache_or_says_so_at_once(env, monkeypatch):
    """Offline, streaming from the Hub cannot stream: what an earlier download left is read,
    and with nothing there the answer comes at once, naming where it looked."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(env / "hf-home"))
    seconds, message = _timed(lambda: tali.load(REPO, split="val"))
    assert seconds < 1.0 and "HF_HUB_OFFLINE is set and no shards of Antreas/TALI@main split 'val'" in message
