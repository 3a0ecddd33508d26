"""Hostile timestamps: composition offsets of +-1 h, a 20 h gap, a last sample claiming 23 h.

Whatever a clip's timestamps claim, a frame reported real (``mask=True``) is a frame whose
decoded timestamp lies in the window and whose pixels are that frame's; outputs sized by
the clip are bounded by ``WindowConfig.max_clip_seconds``; validation flags the clip.
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction

import av
import numpy as np
import pytest

from tali import TaliConfig
from tali.config import AudioConfig, VideoConfig, WindowConfig
from tali.errors import TaliDecodeError
from tali.quality.checks import CheckLimits, check_clip
from tali.sample_data import read_frame_index
from tali.sample_data.patterns import CodeUnreadable
from tali.sample_data.realworld import RealClip, encode_real_clip
from tali.transform import TaliTransform

HOUR = 3600


@pytest.fixture(scope="session")
def base_clip() -> bytes:
    data, _ = encode_real_clip(RealClip(variant="hostile_base", duration_seconds=4.0, gop_seconds=1.0))
    return data


def _remux(data: bytes, change) -> bytes:
    """Copy every packet, letting ``change(index, packet, ticks_per_second)`` edit video ones."""
    out = io.BytesIO()
    with av.open(io.BytesIO(data)) as src, av.open(out, "w", format="mp4") as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        n = 0
        for packet in src.demux():
            if packet.dts is None:
                continue
            if packet.stream.type == "video":
                change(n, packet, round(1 / packet.stream.time_base))
                n += 1
            packet.stream = streams[packet.stream.index]
            dst.mux(packet)
    return out.getvalue()


def _plus_hour_offsets(data: bytes) -> bytes:
    def change(i, packet, tps):
        if 30 <= i < 38:  # 8 frames shown an hour late
            packet.pts += HOUR * tps

    return _remux(data, change)


def _minus_hour_offsets(data: bytes) -> bytes:
    """Signed composition offsets of -1 h on some samples: the ctts box patched in place."""
    buf = bytearray(data)
    at = buf.find(b"ctts")
    assert at > 0, "the base clip has B-frames, so a ctts box"
    count = struct.unpack(">I", buf[at + 8 : at + 12])[0]
    timescale = 15360
    buf[at + 4] = 1  # version 1: signed offsets
    for k in range(min(count, 40)):
        if 20 <= k < 28:
            entry = at + 12 + 8 * k
            struct.pack_into(">i", buf, entry + 4, -HOUR * timescale)
    return bytes(buf)


def _gap(data: bytes) -> bytes:
    def change(i, packet, tps):
        if i >= 60:  # everything after 2 s moves 20 h later
            packet.pts += 20 * HOUR * tps
            packet.dts += 20 * HOUR * tps

    return _remux(data, change)


def _last_claims_23h(data: bytes) -> bytes:
    total = [0]

    def count(i, packet, tps):
        total[0] = i

    _remux(data, count)
    last = total[0]

    def change(i, packet, tps):
        if i == last:
            packet.duration = 23 * HOUR * tps

    return _remux(data, change)


HOSTILE = {
    "plus_hour_offsets": _plus_hour_offsets,
    "minus_hour_offsets": _minus_hour_offsets,
    "gap_20h": _gap,
    "last_23h": _last_claims_23h,
}


def _truth_map(data: bytes) -> dict[float, int | None]:
    """Clip seconds of every decoded frame -> the code it shows (full decode)."""
    out = {}
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        for frame in container.decode(stream):
            try:
                code = read_frame_index(frame.to_ndarray(format="rgb24"))
            except CodeUnreadable:
                code = None
            out[float((frame.pts - origin) * Fraction(stream.time_base))] = code
    return out


CONFIGS = [
    {"window": WindowConfig(seconds=None), "video": VideoConfig(num_frames=8, size=64)},
    {"window": WindowConfig(seconds=1.0, start=0.9), "video": VideoConfig(num_frames=8, size=64)},
    {
        "window": WindowConfig(seconds=2.0, start="random"),
        "video": VideoConfig(selection="sequential", size=64),
    },
    {"window": WindowConfig(seconds=3.0), "video": VideoConfig(keyframes_only=True, size=64)},
]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_no_frame_outside_the_window_is_marked_real(kind, base_clip):
    data = HOSTILE[kind](base_clip)
    truth = _truth_map(data)
    row = {"item_idx": 7, "youtube_video_content": data}
    outcomes = []
    for key, parts in enumerate(CONFIGS):
        config = TaliConfig(
            modalities=("youtube_content_video", "youtube_random_video_frame", "youtube_content_audio"),
            audio=AudioConfig(on_missing="zeros"),
            image=TaliConfig().image.__class__(size=64),
            **parts,
        )
        try:
            sample = TaliTransform(config)(row, key=key)
        except TaliDecodeError as exc:  # typed, located: a clip that spans more than the limit
            assert exc.item_idx == 7
            outcomes.append("error")
            continue
        outcomes.append("sample")
        window = sample["window"]
        start, end = window["start_seconds"], window["start_seconds"] + window["duration_seconds"]
        assert window["clip_seconds"] <= config.window.max_clip_seconds
        audio = sample["youtube_content_audio"]["waveform"]
        assert audio.numel() <= config.window.max_clip_seconds * config.audio.sample_rate
        video = sample["youtube_content_video"]
        for slot in np.flatnonzero(video["mask"].numpy()):
            t = float(video["pts_seconds"][slot])
            assert start - 1e-9 <= t < end + 1e-9 or window["duration_seconds"] < 0.05, (kind, parts, t)
            match = [s for s in truth if abs(s - t) < 1e-9]
            assert match, f"{kind}: slot {slot} at {t} is no decoded frame's timestamp"
            assert read_frame_index(video["frames"][slot]) == truth[match[0]], (kind, slot, t)
    assert outcomes  # every config ran to a sample or a typed error


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_validation_flags_hostile_timestamps(kind, base_clip):
    row = {"item_idx": 3, "youtube_video_content": HOSTILE[kind](base_clip)}
    with pytest.raises(TaliDecodeError, match="timestamps are not usable"):
        check_clip(row, CheckLimits())


def test_validation_passes_a_clean_clip(base_clip):
    check_clip({"item_idx": 1, "youtube_video_content": base_clip}, CheckLimits())


def test_a_last_frame_claiming_23h_does_not_stretch_the_clip(base_clip):
    """The header says 23 h; the clip ends where its last frame ends (one frame interval on)."""
    data = _last_claims_23h(base_clip)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) > 20 * HOUR  # what the header claims
    row = {"item_idx": 2, "youtube_video_content": data}
    config = TaliConfig(modalities=("youtube_content_audio",), window=WindowConfig(seconds=None))
    sample = TaliTransform(config)(row, key=0)
    assert sample["window"]["clip_seconds"] == pytest.approx(4.0, abs=1e-6)
    assert sample["youtube_content_audio"]["waveform"].numel() == 4 * 16_000


def test_clip_length_is_bounded_by_config(base_clip):
    row = {"item_idx": 5, "youtube_video_content": _gap(base_clip)}
    config = TaliConfig(modalities=("youtube_content_audio",), window=WindowConfig(seconds=None))
    with pytest.raises(TaliDecodeError, match="max_clip_seconds"):
        TaliTransform(config)(row, key=0)
    roomy = TaliConfig(
        modalities=("youtube_content_video",),
        window=WindowConfig(seconds=1.0, start=0.0, max_clip_seconds=30 * HOUR),
        video=VideoConfig(size=32),
    )
    sample = TaliTransform(roomy)(row, key=0)
    assert sample["window"]["clip_seconds"] > 20 * HOUR


def _gap_360s(data: bytes) -> bytes:
    def change(i, packet, tps):
        if i >= 60:  # everything after 2 s moves 360 s later (under the 600 s clip limit)
            packet.pts += 360 * tps
            packet.dts += 360 * tps

    return _remux(data, change)


def test_a_frame_before_a_gap_is_not_a_later_windows_frame(base_clip):
    """Issue 24 item 11: a window 350 s into a 360 s gap holds no frame of its own; the frame
    on screen since before the gap is padding (mask False), not served as the window's."""
    row = {"item_idx": 6, "youtube_video_content": _gap_360s(base_clip)}
    truth = _truth_map(row["youtube_video_content"])
    inside = TaliConfig(
        modalities=("youtube_content_video",),
        window=WindowConfig(seconds=1.0, start=352.0, nominal_clip_seconds=400.0),
        video=VideoConfig(num_frames=4, size=32),
    )
    video = TaliTransform(inside)(row, key=0)["youtube_content_video"]
    assert not video["mask"].any()
    assert np.isnan(video["pts_seconds"].numpy()).all()
    # Across the gap's end: only the frames that start in the window are real, with their codes.
    across = TaliConfig(
        modalities=("youtube_content_video",),
        window=WindowConfig(seconds=2.0, start=361.5, nominal_clip_seconds=400.0),
        video=VideoConfig(num_frames=8, size=32, selection="sequential"),
    )
    video = TaliTransform(across)(row, key=0)["youtube_content_video"]
    real = video["pts_seconds"].numpy()[video["mask"].numpy()]
    assert real.size == 8 and real.min() >= 361.5
    for slot in np.flatnonzero(video["mask"].numpy()):
        t = float(video["pts_seconds"][slot])
        shown = min(truth, key=lambda s: abs(s - t))
        assert abs(shown - t) < 1e-9 and read_frame_index(video["frames"][slot]) == truth[shown]
