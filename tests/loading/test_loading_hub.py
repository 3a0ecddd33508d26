"""tali.hub against a loopback Hub driven by the real huggingface_hub client:
subset downloads, no second download, retries, corrupt shards, killed downloads."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tali
from tali import hub
from tali.errors import TaliConfigError, TaliSourceError

REPO = "Antreas/TALI"


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TALI_CACHE_DIR", str(tmp_path / "tali-cache"))  # sha256 markers
    return tmp_path


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_subset_download_then_nothing_more(hub, env):
    report = tali.hub.download(
        REPO, split="train[:50%]", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False
    )
    assert [Path(f).name for f in report.files] == ["train-00000-of-00002.parquet"]
    assert [Path(r.path).name for r in hub.downloads()] == ["train-00000-of-00002.parquet"]
    assert sha(report.files[0]) == hub.sha["data/train-00000-of-00002.parquet"]
    assert report.commit == "0123456789abcdef0123456789abcdef01234567"
    assert report.downloaded_bytes == Path(report.files[0]).stat().st_size
    # The HF cache layout: huggingface_hub itself finds the file offline.
    from huggingface_hub import try_to_load_from_cache

    assert (
        try_to_load_from_cache(
            REPO,
            "data/train-00000-of-00002.parquet",
            cache_dir=env / "hf",
            revision=report.commit,
            repo_type="dataset",
        )
        == report.files[0]
    )
    before = len(hub.log)
    again = tali.hub.download(
        REPO, split="train[:50%]", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False
    )
    assert again.files == report.files and again.downloaded_bytes == 0
    file_requests = [r for r in hub.log[before:] if "/resolve/" in r.path]
    assert file_requests == []  # only the listing was asked for: no HEAD, no GET of any shard


def test_load_from_the_hub_streams_the_split(hub, env):
    from .conftest import TEXT

    stream = tali.load(
        REPO,
        split="val",
        config=TEXT,
        cache_dir=env / "hf",
        endpoint=hub.endpoint,
        progress=False,
        download=True,
    )
    assert sorted(s["item_idx"] for s in stream) == [16, 17, 18, 19]
    dataset = tali.load(
        REPO,
        split="val",
        config=TEXT,
        streaming=False,
        download=True,
        cache_dir=env / "hf",
        endpoint=hub.endpoint,
        progress=False,
    )
    assert len(dataset) == 4 and dataset[2]["item_idx"] == 18
    assert len(hub.downloads()) == 1


def test_explicit_shards_into_a_local_dir(hub, env, capsys):
    report = hub_download = tali.hub.download(
        REPO,
        split="train",
        shards=["train-00001-of-00002.parquet"],
        local_dir=env / "TALI",
        endpoint=hub.endpoint,
        progress=True,
    )
    assert "1 shards" in capsys.readouterr().out  # the byte progress bar
    assert hub_download.files == [str(env / "TALI" / "data" / "train-00001-of-00002.parquet")]
    assert sha(report.files[0]) == hub.sha["data/train-00001-of-00002.parquet"]
    # The local dir is a Hub-layout source in its own right.
    assert len(tali.load(env / "TALI", split="train", progress=False)) == 8


def test_rate_limits_and_server_errors_are_retried(hub, env):
    name = "data/test-00000-of-00001.parquet"
    hub.faults[name].extend(["429", "503", "503"])
    report = tali.hub.download(
        REPO, split="test", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False, base_delay=0.01
    )
    statuses = [r.status for r in hub.log if r.method == "GET" and r.path.endswith(name)]
    assert statuses == [429, 503, 503, 200]
    assert sha(report.files[0]) == hub.sha[name]


def test_corrupt_download_is_detected_and_fetched_again(hub, env):
    name = "data/val-00000-of-00001.parquet"
    hub.faults[name].append("corrupt")  # right size, wrong bytes: only sha256 can tell
    report = tali.hub.download(REPO, split="val", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False)
    assert report.refetched == [name]
    assert len(hub.downloads(name)) == 2
    assert sha(report.files[0]) == hub.sha[name]


def test_damaged_cached_shard_is_fetched_again(hub, env):
    first = tali.hub.download(REPO, split="val", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False)
    blob = os.path.realpath(first.files[0])
    with open(blob, "r+b") as fh:  # a disk error / partial copy truncates the cached blob
        fh.truncate(1000)
    second = tali.hub.download(REPO, split="val", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False)
    assert second.refetched == ["data/val-00000-of-00001.parquet"]
    assert len(hub.downloads()) == 2
    assert sha(second.files[0]) == hub.sha["data/val-00000-of-00001.parquet"]


def test_killed_download_resumes_with_a_range_request(hub, env):
    name = "data/train-00000-of-00002.parquet"
    size = Path(hub.files[name]).stat().st_size
    hub.faults[name].append("stall")  # send half, then hang: the process is killed mid-transfer
    # 1 MiB chunks (the client's default is 10 MiB) so the partial file holds data when killed.
    script = textwrap.dedent(f"""
        import huggingface_hub.constants, tali.hub
        huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE = 1 << 20
        tali.hub.download({REPO!r}, split="train", shards=[0], cache_dir={str(env / "hf")!r},
                          endpoint={hub.endpoint!r}, progress=False)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    )
    try:
        assert hub.stalled.wait(60), "the download never started"
        deadline = time.monotonic() + 30
        incomplete: list[Path] = []
        while time.monotonic() < deadline:
            incomplete = [p for p in (env / "hf").rglob("*.tali-incomplete") if p.stat().st_size >= 1 << 20]
            if incomplete:
                break
            time.sleep(0.05)
        assert incomplete, "no partial file was written"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    hub.release.set()
    partial = incomplete[0].stat().st_size
    report = tali.hub.download(
        REPO, split="train", shards=[0], cache_dir=env / "hf", endpoint=hub.endpoint, progress=False
    )
    resumed = hub.downloads(name)[-1]
    assert resumed.range == f"bytes={partial}-" and resumed.status == 206
    assert resumed.sent == size - partial
    assert sha(report.files[0]) == hub.sha[name]


def test_hub_errors_are_typed(hub, env):
    with pytest.raises(TaliSourceError, match="has no shards for split 'dev'"):
        tali.hub.download(REPO, split="dev", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False)
    with pytest.raises(TaliSourceError, match="HTTP 404"):
        tali.hub.download(
            "someone/else", split="train", cache_dir=env / "hf", endpoint=hub.endpoint, progress=False
        )
    with pytest.raises(TaliConfigError, match="split 'train\\[:x\\]' is not understood"):
        tali.hub.download(REPO, split="train[:x]", endpoint=hub.endpoint, progress=False)
    with pytest.raises(TaliConfigError, match="shard index 5 out of range"):
        tali.hub.download(REPO, split="train", shards=[5], endpoint=hub.endpoint, progress=False)
    with pytest.raises(TaliConfigError, match="no shard named 'nope.parquet'"):
        tali.hub.download(REPO, split="train", shards=["nope.parquet"], endpoint=hub.endpoint, progress=False)
    with pytest.raises(TaliConfigError, match="verify='md5' is not allowed"):
        tali.hub.download(REPO, verify="md5", endpoint=hub.endpoint)


@pytest.mark.parametrize(
    "spec,n,expected",
    [
        ("train", 20, (0, 20)),
        ("train[:5%]", 20, (0, 1)),
        ("train[:1%]", 20, (0, 1)),
        ("train[10%:20%]", 20, (2, 4)),
        ("val[2:4]", 5, (2, 4)),
        ("test[-2:]", 5, (3, 5)),
    ],
)
def test_split_slices(spec, n, expected):
    s = hub.parse_split(spec).apply(n)
    assert range(n)[s] == range(*expected)


def test_download_command(hub, env, capsys):
    from tali.cli.main import main

    args = [
        "download",
        "--split",
        "val",
        "--cache-dir",
        str(env / "hf"),
        "--endpoint",
        hub.endpoint,
        "--json",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert [Path(f).name for f in report["files"]] == ["val-00000-of-00001.parquet"]
    assert report["downloaded_bytes"] > 0
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["downloaded_bytes"] == 0
    assert (
        main(
            [
                "download",
                "--split",
                "train",
                "--shard",
                "1",
                "--local-dir",
                str(env / "TALI"),
                "--endpoint",
                hub.endpoint,
                "--quiet",
            ]
        )
        == 0
    )
    assert "train-00001-of-00002.parquet" in capsys.readouterr().out
    assert main(["download", "--split", "nope", "--endpoint", hub.endpoint, "--quiet"]) == 1
    assert "has no shards for split 'nope'" in capsys.readouterr().err


def test_stream_from_the_hub_without_downloading(hub, env):
    from .conftest import TEXT

    stream = tali.load(REPO, split="val", download=False, endpoint=hub.endpoint, config=TEXT)
    assert stream.files == ["datasets/Antreas/TALI/data/val-00000-of-00001.parquet"]
    assert sorted(s["item_idx"] for s in stream) == [16, 17, 18, 19]
    reads = hub.downloads()
    assert reads and all(r.status == 206 and r.range for r in reads)  # byte ranges, never the whole file
    assert not list(env.rglob("*.parquet"))


def test_a_chosen_subset_loads_but_a_lost_shard_is_still_refused(hub, env):
    """The selection manifest makes a chosen subset complete as chosen; a shard of the
    selection that is gone afterwards is a missing shard again."""
    local = env / "subset"
    tali.hub.download(
        REPO,
        split="train",
        shards=["train-00001-of-00002.parquet"],
        local_dir=local,
        endpoint=hub.endpoint,
        progress=False,
    )
    assert len(tali.load(local, split="train", progress=False)) == 8
    (local / "data" / "train-00001-of-00002.parquet").rename(local / "data" / "train-00000-of-00002.parquet")
    with pytest.raises(tali.TaliSourceError, match=r"split train is incomplete: 1 of 2 shards missing"):
        tali.load(local, split="train", progress=False)
