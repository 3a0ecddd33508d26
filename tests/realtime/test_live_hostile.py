"""tali.live against hostile timestamps and pipes: windows bounded by the media that
arrived, no stale frame marked real, a silent or garbage pipe ends in a typed error."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from tali import TaliConfig, VideoConfig, WindowConfig, sample_data
from tali.errors import TaliConfigError, TaliStreamStalledError
from tali.realtime import live
from tali.realtime.testing import StreamServer, mpegts_of

CONFIG = TaliConfig(
    modalities=("youtube_content_video", "youtube_content_audio"),
    window=WindowConfig(seconds=3.0),
    video=VideoConfig(num_frames=4, size=64),
)


@pytest.fixture(scope="module")
def clip(sample_root, truth):
    item = next(i for i, t in truth.items() if t["variant"] == "standard" and t["split"] == "train")
    for path in sorted((sample_root / "data").glob("train-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            if row["item_idx"] == item:
                return row["youtube_video_content"], truth[item]
    raise AssertionError("no standard clip")


def real_frames_inside(window) -> bool:
    video, w = window["youtube_content_video"], window["window"]
    pts = video["pts_seconds"][video["mask"]]
    end = w["start_seconds"] + w["duration_seconds"]
    return bool(((pts >= w["start_seconds"]) & (pts < end)).all())


@pytest.mark.parametrize("second_pass_at", [36_000.0, 0.0], ids=["10-hour jump", "reset"])
def test_timestamp_jump_or_reset_keeps_windows_to_the_media(clip, tmp_path, second_pass_at):
    """Two passes of a 30 s clip, the second at +10 h or back at 0. Before: 36,028 windows
    (GBs of RSS, 144,000 stale frames marked real) for the jump; the reset's later windows lost."""
    mp4, truth = clip
    first, seconds = mpegts_of(mp4)
    second, _ = mpegts_of(mp4, offset_seconds=second_pass_at)
    path = tmp_path / "hostile.ts"
    path.write_bytes(first + second)
    began = time.monotonic()
    stream = live(str(path), CONFIG, hop_seconds=0.5, format="mpegts", timeout=5)
    windows = list(stream)
    assert time.monotonic() - began < 120
    # ~2 x 30 s of media at a 0.5 s hop: ~115 windows, whatever the timestamps say.
    assert 100 <= len(windows) <= 2 * seconds / 0.5 + 2
    assert stream.stats.discontinuities >= 2  # video and audio each re-based once
    assert all(real_frames_inside(w) for w in windows)
    assert sum(int(w["youtube_content_video"]["mask"].sum()) for w in windows) >= 0.9 * 4 * len(windows)
    for window in windows[:40]:  # the first pass: frames are the clip's, by ground truth
        video = window["youtube_content_video"]
        for frame, t, real in zip(video["frames"], video["pts_seconds"], video["mask"]):
            if real:
                assert sample_data.read_frame_index(frame) == sample_data.frame_index_at(
                    truth, float(t) + 1e-6
                )


def _writer(payload: str) -> str:
    return f"import os, sys, time\n{payload}\ntime.sleep(60)\n"


def _live_from_pipe(payload: str, path, *, within: float) -> subprocess.CompletedProcess[str]:
    """``tali live -`` reading a writer process that runs ``payload`` (``sys.argv[1]`` is
    ``path``); it must end within ``within`` seconds."""
    writer = subprocess.Popen([sys.executable, "-c", _writer(payload), str(path)], stdout=subprocess.PIPE)
    try:
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "tali.cli.main", "live", "-", "--format", "mpegts", "--timeout", "1"],
            stdin=writer.stdout,
            check=False,
            capture_output=True,
            text=True,
            timeout=within + 40,
        )
        assert time.monotonic() - began < within
    finally:
        writer.kill()
        writer.wait()
    return done


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("pass", "no data from the pipe for 1 s"),  # never sends a byte
        (
            "data = open(sys.argv[1], 'rb').read(); sys.stdout.buffer.write(data[: 188 * 700 + 90]); sys.stdout.flush()",
            "no data from the pipe for 1 s",
        ),
        (
            "end = time.time() + 60\nwhile time.time() < end:\n    sys.stdout.buffer.write(os.urandom(1 << 16)); sys.stdout.flush(); time.sleep(0.01)",
            "the pipe sent bytes but no packet for 11 s",  # the timeout + the probe allowance
        ),
    ],
    ids=["silent", "stops mid-packet", "random bytes forever"],
)
def test_hostile_pipe_ends_in_a_typed_error(clip, tmp_path, payload, message):
    """``tali live -`` on a pipe that stays open: before, ``Fatal Python error: could not acquire
    lock for <stdin>`` (exit 134), or (random bytes) ran until killed."""
    mp4, _ = clip
    path = tmp_path / "clip.ts"
    path.write_bytes(mpegts_of(mp4)[0])
    done = _live_from_pipe(payload, path, within=30)
    assert done.returncode == 1, done.stderr
    assert "Fatal Python error" not in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == f"tali live: error: {message}", done.stderr


def test_live_refuses_what_a_stream_cannot_give_and_honours_the_rest(clip, tmp_path):
    """``tali.live`` ignored modalities, output, selection, orientation and window.start."""
    mp4, truth = clip
    path = tmp_path / "clip.ts"
    path.write_bytes(mpegts_of(mp4)[0])
    with pytest.raises(TaliConfigError, match="also asks for wikipedia_caption_image"):
        live(str(path), CONFIG.replace(modalities=("youtube_content_video", "wikipedia_caption_image")))
    with pytest.raises(TaliConfigError, match="start='centre' has no meaning"):
        live(str(path), CONFIG.replace(window=WindowConfig(seconds=3.0, start="centre")))
    config = CONFIG.replace(
        modalities=("youtube_content_video",),
        window=WindowConfig(seconds=3.0, start=1.25),
        video=VideoConfig(num_frames=4, size=64, output="float", selection="sequential"),
    )
    windows = list(live(str(path), config, hop_seconds=3.0, format="mpegts", timeout=5))
    first = windows[0]
    assert set(first) == {"item_idx", "key", "epoch", "window", "youtube_content_video", "live"}
    assert first["item_idx"] == -1 and first["window"]["start_seconds"] == 1.25
    video = first["youtube_content_video"]
    assert video["frames"].dtype.is_floating_point and video["rotation"] == 0
    codes = [sample_data.read_frame_index((f * 255).round().byte()) for f in video["frames"]]
    start_code = sample_data.frame_index_at(truth, 1.25)
    assert codes == list(range(codes[0], codes[0] + 4)) and codes[0] in (start_code, start_code + 1)


@pytest.mark.parametrize("seed", range(6))
def test_mutated_streams_give_bounded_windows_or_a_typed_error(clip, tmp_path, seed):
    """Fuzz: a 30 s stream with random bytes overwritten, chunks dropped or repeated. Each run
    ends in bounded time with windows that only mark frames inside them real, or a typed error."""
    import numpy as np

    from tali.errors import TaliLiveError

    mp4, _ = clip
    data = bytearray(mpegts_of(mp4)[0])
    rng = np.random.default_rng(seed)
    packets = [bytes(data[i : i + 188]) for i in range(0, len(data), 188)]
    out: list[bytes] = []
    for packet in packets:
        u = rng.random()
        if u < 0.01:
            continue  # dropped
        if u < 0.02:
            out.extend([packet] * int(rng.integers(2, 50)))  # repeated (stale timestamps)
            continue
        if u < 0.04:
            packet = bytes(rng.integers(0, 256, size=188, dtype=np.uint8))  # garbage
        out.append(packet)
    path = tmp_path / "mutated.ts"
    path.write_bytes(b"".join(out))
    began = time.monotonic()
    try:
        windows = list(live(str(path), CONFIG, hop_seconds=0.5, format="mpegts", timeout=2))
    except TaliLiveError:
        windows = []
    assert time.monotonic() - began < 60
    assert len(windows) <= 2 * 31 / 0.5  # never more windows than media that arrived allows
    assert all(real_frames_inside(w) for w in windows)


def test_live_random_frames_are_seeded_like_training(clip, tmp_path):
    """``selection="random"``: each window draws its slots from the config's seed and
    its window number (``tali.window.seed_key`` without a row): reruns agree, seeds differ."""
    mp4, _ = clip
    path = tmp_path / "clip.ts"
    path.write_bytes(mpegts_of(mp4)[0])

    def pts(seed: int) -> list[list[float]]:
        config = CONFIG.replace(video=VideoConfig(num_frames=4, size=64, selection="random"), seed=seed)
        windows = live(str(path), config, hop_seconds=3.0, format="mpegts", timeout=5)
        return [w["youtube_content_video"]["pts_seconds"].tolist() for w in windows]

    first = pts(1)
    assert first == pts(1) and first != pts(2)
    assert all(a <= b for window in first for a, b in itertools.pairwise(window))  # sorted slots


def test_packets_without_a_video_frame_end_in_a_typed_error_over_http(clip):
    """A never-ending HTTP stream whose video track is declared but never sends a frame while
    its audio flows: before, read for as long as the server sent (no window, no error)."""
    mp4, _ = clip
    data, seconds = mpegts_of(mp4, packets_of=("audio",))
    with StreamServer(data, seconds=seconds, loop_seconds=120) as server:
        began = time.monotonic()
        stream = live(server.url, CONFIG, hop_seconds=0.5, format="mpegts", timeout=1)
        with pytest.raises(TaliStreamStalledError, match="packets but no decodable video frame for 11 s"):
            next(iter(stream))
        assert time.monotonic() - began < 40


def test_packets_without_a_video_frame_end_in_a_typed_error_from_a_pipe(clip, tmp_path):
    """The same stream through ``tali live -``: the pipe's no-packet clock never fired (packets
    kept coming), so it ran until killed; now exit 1 with the typed error."""
    mp4, _ = clip
    path = tmp_path / "audio-only.ts"
    path.write_bytes(mpegts_of(mp4, packets_of=("audio",))[0])
    payload = (
        "data = open(sys.argv[1], 'rb').read()\nend = time.time() + 90\nwhile time.time() < end:\n"
        "    sys.stdout.buffer.write(data); sys.stdout.flush(); time.sleep(0.5)"
    )
    done = _live_from_pipe(payload, path, within=40)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "sent packets but no decodable video frame for 11 s" in done.stderr, done.stderr
