"""tali.live against real sources on loopback: HTTP, a pipe, a file still being written;
frames, tones and stream times checked against the sample clip's ground truth."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pyarrow.parquet as pq
import pytest
import torch

from tali import TaliConfig, VideoConfig, WindowConfig, sample_data
from tali.errors import TaliConfigError, TaliLiveError, TaliStreamStalledError
from tali.realtime import ReconnectPolicy, live
from tali.realtime.testing import StreamServer, mpegts_of

CONFIG = TaliConfig(
    modalities=("youtube_content_video", "youtube_content_audio"),
    window=WindowConfig(seconds=3.0),
    video=VideoConfig(num_frames=8, size=112),
)


@pytest.fixture(scope="module")
def stream_bytes(sample_root, truth):
    item = next(i for i, t in truth.items() if t["variant"] == "standard" and t["split"] == "train")
    for path in sorted((sample_root / "data").glob("train-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            if row["item_idx"] == item:
                data, seconds = mpegts_of(row["youtube_video_content"])
                return data, seconds, truth[item]
    raise AssertionError("no standard clip")


def check_window(window, truth, k: int, hop: float) -> None:
    assert window["live"]["index"] == k
    assert window["window"]["start_seconds"] == pytest.approx(k * hop)
    assert window["live"]["latency_seconds"] >= 0
    video = window["youtube_content_video"]
    start = window["window"]["start_seconds"]
    pts = video["pts_seconds"].numpy()
    assert (pts >= start - 1 / truth["fps"]).all() and (pts < start + 3.0).all()
    for frame, t in zip(video["frames"], pts):
        assert sample_data.read_frame_index(frame) == sample_data.frame_index_at(truth, t + 1e-6)
    audio = window["youtube_content_audio"]
    assert audio["waveform"].shape == (48_000,)
    tones = sample_data.tone_seconds(audio["waveform"], 16_000, start)
    heard = [
        (t, s) for t, s in tones if s is not None and sample_data.expected_tone_second(truth, t) is not False
    ]
    assert len(heard) >= 6 and all(s == int(t) for t, s in heard)


def test_http_stream_windows_match_ground_truth(stream_bytes):
    data, seconds, truth = stream_bytes
    with StreamServer(data, seconds=seconds) as server:
        stream = live(server.url, CONFIG, hop_seconds=1.5, timeout=5)
        windows = list(stream)
    assert len(windows) == int((30.0 - 3.0) / 1.5) + 1
    for k, window in enumerate(windows):
        check_window(window, truth, k, 1.5)
    summary = stream.stats.summary()
    assert (
        summary["windows"] == len(windows) and summary["latency_ms"]["p99"] >= summary["latency_ms"]["median"]
    )


def test_same_processors_as_training(stream_bytes):
    from tali.processors import ClipPixels, ProcessorSet, WhisperLogMel

    data, seconds, _ = stream_bytes
    procs = ProcessorSet(
        {"youtube_content_video": ClipPixels(size=112), "youtube_content_audio": WhisperLogMel()}
    )
    with StreamServer(data, seconds=seconds) as server:
        raw = list(live(server.url, CONFIG, max_windows=2))
        processed = list(live(server.url, CONFIG, processors=procs, max_windows=2))
    for r, p in zip(raw, processed):
        expected = procs({k: v for k, v in r.items() if k != "live"})
        assert p["youtube_content_video"]["pixel_values"].shape == (8, 3, 112, 112)
        assert torch.equal(
            p["youtube_content_video"]["pixel_values"], expected["youtube_content_video"]["pixel_values"]
        )
        assert torch.equal(
            p["youtube_content_audio"]["input_features"], expected["youtube_content_audio"]["input_features"]
        )


def test_pipe(stream_bytes, tmp_path):
    data, _, truth = stream_bytes
    source = tmp_path / "s.ts"
    source.write_bytes(data)
    writer = (
        "import sys, time\n"
        f"data = open({str(source)!r}, 'rb').read()\n"
        "for i in range(0, len(data), 65536):\n"
        "    sys.stdout.buffer.write(data[i:i + 65536]); sys.stdout.buffer.flush(); time.sleep(0.002)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE)
    try:
        windows = list(live(proc.stdout, CONFIG, hop_seconds=3.0, format="mpegts", timeout=5))
    finally:
        proc.wait(timeout=30)
    assert len(windows) == 10
    check_window(windows[4], truth, 4, 3.0)


def test_growing_file_that_stops_growing_is_a_finished_recording(stream_bytes, tmp_path):
    """``follow=True``: a file that stops growing for ``timeout`` seconds has ended; the
    windows the data that arrived completes are all given (before: a stall error, and the
    last window lost)."""
    data, _, truth = stream_bytes
    path = tmp_path / "growing.ts"
    path.write_bytes(b"")
    half = len(data) // 2 // 188 * 188

    def write() -> None:
        with open(path, "ab") as f:
            for i in range(0, half, 32 * 188):
                f.write(data[i : min(i + 32 * 188, half)])
                f.flush()
                time.sleep(0.001)

    thread = threading.Thread(target=write)
    thread.start()
    began = time.monotonic()
    got = list(live(str(path), CONFIG, hop_seconds=2.0, follow=True, format="mpegts", timeout=1.0))
    thread.join()
    assert 5 <= len(got) <= 7  # the first ~15 s arrived; the rest never came
    assert time.monotonic() - began < 30
    check_window(got[2], truth, 2, 2.0)
    check_window(got[-1], truth, len(got) - 1, 2.0)


def test_follow_on_a_finished_recording_keeps_the_last_window(stream_bytes, tmp_path):
    """``tali live --follow`` on a recording already complete: exit 0, the same windows as
    without ``--follow`` (before: "sent nothing for 2 s", exit 1, the last window lost)."""
    data, _, _ = stream_bytes
    path = tmp_path / "done.ts"
    path.write_bytes(data)

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tali.cli.main", "live", str(path), "--hop", "3", "--json", *extra]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    plain, followed = run(), run("--follow", "--timeout", "2")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.count("\n") == plain.stdout.count("\n") == 10


def test_stalled_http_stream_raises_or_reconnects(stream_bytes):
    data, seconds, truth = stream_bytes
    with StreamServer(data, seconds=seconds, stall_after=len(data) // 3) as server:
        began = time.monotonic()
        with pytest.raises(TaliStreamStalledError, match="sent nothing for 1 s"):
            list(live(server.url, CONFIG, hop_seconds=3.0, timeout=1.0))
        assert time.monotonic() - began < 20
    with StreamServer(data, seconds=seconds, stall_after=len(data) // 3) as server:
        stream = live(
            server.url, CONFIG, hop_seconds=3.0, timeout=1.0, reconnect=ReconnectPolicy(backoff_seconds=0)
        )
        windows = list(stream)
    assert stream.stats.reconnects == 1 and server.connections == 2
    before = [w for w in windows if w["live"]["reconnects"] == 0]
    after = [w for w in windows if w["live"]["reconnects"] == 1]
    assert 1 <= len(before) < 10 and len(after) == 10  # the second connection delivers the whole clip
    check_window(after[5], truth, 5, 3.0)


def test_unreachable_source_and_bad_settings():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TaliLiveError, match="cannot open live source"):
        list(live(f"http://127.0.0.1:{port}/none.ts", CONFIG, timeout=2))
    with pytest.raises(TaliConfigError, match="hop_seconds must be > 0"):
        live("x", CONFIG, hop_seconds=0)
    with pytest.raises(TaliConfigError, match="WindowConfig.seconds"):
        live("x", CONFIG.replace(window=WindowConfig(seconds=None)))
    with pytest.raises(TaliConfigError, match="reconnect= needs a URL"):
        live(sys.stdin, CONFIG, reconnect=ReconnectPolicy())


def test_cli_prints_windows_and_latency(stream_bytes, tmp_path):
    data, _, _ = stream_bytes
    path = tmp_path / "clip.ts"
    path.write_bytes(data)
    out = subprocess.run(
        [sys.executable, "-m", "tali.cli.main", "live", str(path), "--hop", "3", "--stats", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    import json

    windows = [json.loads(line) for line in out[:-1]]
    stats = json.loads(out[-1])["stats"]
    assert [w["index"] for w in windows] == list(range(10)) and stats["windows"] == 10
    assert stats["latency_ms"]["p99"] >= stats["latency_ms"]["median"] > 0
    bad = subprocess.run(
        [sys.executable, "-m", "tali.cli.main", "live", str(tmp_path / "missing.ts")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "cannot open live source" in bad.stderr


def test_subtitle_lines_follow_the_window(sample_root, truth, tmp_path):
    """A source that carries a subtitle track: each window holds exactly the lines that
    start inside it ("second s" at clip time s + 0.5), timed from the window start."""
    from tali.realtime.testing import with_subtitles

    item = next(i for i, t in truth.items() if t["variant"] == "standard" and t["split"] == "train")
    mp4 = next(
        row["youtube_video_content"]
        for path in sorted((sample_root / "data").glob("train-*.parquet"))
        for row in pq.read_table(path).to_pylist()
        if row["item_idx"] == item
    )
    path = tmp_path / "with_subtitles.mkv"
    path.write_bytes(with_subtitles(mp4, [(s + 0.5, s + 0.9, f"second {s}") for s in range(30)]))
    # A hop of 1.2 s never puts a window edge on a line start (k * 1.2 is never n + 0.5).
    config = CONFIG.replace(modalities=CONFIG.modalities + ("youtube_subtitle_text",))
    windows = list(live(str(path), config, hop_seconds=1.2, timeout=5))
    assert len(windows) == int((30.0 - 3.0) / 1.2) + 1
    for window in windows:
        start = window["window"]["start_seconds"]
        want = [s for s in range(30) if start <= s + 0.5 <= start + 3.0]
        subs = window["youtube_subtitle_text"]
        assert subs["text"] == " ".join(f"second {s}" for s in want) and subs["num_lines"] == len(want)
        assert subs["line_seconds"].tolist() == pytest.approx([s + 0.5 - start for s in want])
