"""Each per-row bound of issue 14.A at its mechanism: what it refuses, what it still decodes."""

from __future__ import annotations

import io
import time
import tracemalloc

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tali import TaliConfig, VideoConfig
from tali.decode.clip import open_clip
from tali.decode.image import count_jpeg_scans, decode_image, resize_and_crop
from tali.decode.subtitles import parse_subtitles
from tali.decode.video import decode_frames_played_at
from tali.errors import TaliConfigError, TaliDecodeError, TaliImageError, TaliSubtitleError
from tali.limits import ClipLimits
from tali.quality.mutate import (
    _EPS,
    _claim_samples,
    _mpeg4_clip,
    aspect_bomb,
    edit_list_bomb,
    jpeg_scan_bomb,
    png16,
)


@pytest.fixture(scope="module")
def clip_bytes(sample_root) -> bytes:
    return pq.read_table(sample_root / "data" / "val-00000-of-00001.parquet").to_pylist()[0][
        "youtube_video_content"
    ]


def _decode(data: bytes, **kw) -> Image.Image:
    return decode_image(data, size=kw.pop("size", 224), max_pixels=64_000_000, item_idx=7, **kw)


def test_resize_computes_only_the_output_square_and_matches_resize_then_crop():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (300, 517, 3), dtype=np.uint8))
    new_w = round(517 * 224 / 300)  # 386: short side to 224, then the centre square
    left = (new_w - 224) // 2
    full = image.resize((new_w, 224), Image.Resampling.BICUBIC).crop((left, 0, left + 224, 224))
    diff = np.abs(np.asarray(resize_and_crop(image, 224), dtype=int) - np.asarray(full, dtype=int))
    assert diff.max() <= 1 and diff.mean() < 0.01  # float rounding of the box, nothing more
    tracemalloc.start()
    out = _decode(aspect_bomb(1, 40_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.size == (224, 224) and out.getpixel((100, 100)) == (7, 7, 7)
    assert peak < 20_000_000  # 224 x 8.96 M RGB would be 6 GB


def test_only_tali_image_formats_open():
    with pytest.raises(TaliImageError, match=r"not a supported image format \[item_idx=7, field=image\]"):
        _decode(_EPS)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PPM")  # a format Pillow reads, but not a TALI one
    with pytest.raises(TaliImageError, match="not a supported image format"):
        _decode(buffer.getvalue())
    for fmt in ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"):
        buffer = io.BytesIO()
        Image.new("RGB", (40, 30), (200, 10, 10)).save(buffer, fmt)
        assert _decode(buffer.getvalue(), size=16).size == (16, 16), fmt


def test_jpeg_scans_are_counted_before_decoding():
    bomb = jpeg_scan_bomb(500)
    assert count_jpeg_scans(bomb) == 510  # libjpeg's 10-scan progression + 500 repeats
    started = time.monotonic()
    with pytest.raises(TaliImageError, match="JPEG has 510 scans, over the 64-scan limit"):
        _decode(bomb)
    assert time.monotonic() - started < 1.0  # refused from the markers, not decoded
    assert _decode(bomb, max_jpeg_scans=1000).size == (224, 224)  # a limit, not a ban


def test_image_decode_clock_stops_a_slow_decode():
    slow = aspect_bomb(1, 2_000_000)  # ~0.3 s of PNG row filters
    with pytest.raises(TaliImageError, match=r"TimeoutError: decoding image took longer than the 1e-06 s"):
        _decode(slow, max_seconds=1e-6)
    assert _decode(slow, max_seconds=None).size == (224, 224)


def test_16bit_images_scale_in_bands():
    data = png16(1000, 1000)
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    out = np.asarray(_decode(data, size=None))
    assert out.shape == (1000, 1000, 3)
    ramp = np.arange(1000) * 65535 // 999
    np.testing.assert_array_equal(out[500, :, 0], np.floor(ramp * (255 / 65535) + 0.5).astype(np.uint8))


def test_every_decoder_exception_is_a_located_image_error():
    png = aspect_bomb(3, 3)
    broken = png[:33] + b"\xff" * 20 + png[53:]  # IHDR body and CRC garbled
    with pytest.raises(TaliImageError, match=r"cannot decode image: .*\[item_idx=7, field=image\]"):
        _decode(broken)


def test_subtitle_budgets_count_aliases_as_expanded():
    fanout = "0.5: &a [" + ",".join(["w"] * 100) + "]\n" + "".join(f"{k}.5: *a\n" for k in range(1, 200))
    assert len(parse_subtitles(fanout)) == 200  # within the defaults: parsed, aliases resolved
    with pytest.raises(TaliSubtitleError, match="over 5000 YAML nodes"):
        parse_subtitles(fanout, max_nodes=5000)
    with pytest.raises(TaliSubtitleError, match="over 50 YAML aliases"):
        parse_subtitles(fanout, max_aliases=50)
    scalar = "0.5: &a " + "x" * 1000 + "\n" + "".join(f"{k}.5: *a\n" for k in range(1, 10))
    with pytest.raises(TaliSubtitleError, match="subtitle texts expand to over 5000 bytes"):
        parse_subtitles(scalar, max_bytes=5000)
    emoji = "1.5: " + "\U0001f600" * 2000
    with pytest.raises(TaliSubtitleError, match=r"8005\+ bytes of UTF-8, over the 5000 limit"):
        parse_subtitles(emoji, max_bytes=5000)
    with pytest.raises(TaliSubtitleError, match="over 1000 YAML nodes"):
        parse_subtitles("1.5: [" + "a," * 5000 + "a]", max_nodes=1000)


def test_clip_counts_are_read_before_ffmpeg_opens_it(clip_bytes):
    with pytest.raises(TaliDecodeError, match="edit list of 200000 entries, over the 64-entry limit"):
        open_clip(edit_list_bomb(clip_bytes, 200_000), item_idx=3)
    with pytest.raises(TaliDecodeError, match="claims over 1000000 samples"):
        open_clip(_claim_samples(clip_bytes), item_idx=3)
    with pytest.raises(TaliDecodeError, match="clip is .* bytes, over the 1000-byte limit"):
        open_clip(clip_bytes, item_idx=3, limits=ClipLimits(max_bytes=1000))
    with open_clip(clip_bytes, item_idx=3) as clip:  # the real clip passes every check
        assert clip.info.width == 640


def test_only_allowed_codecs_decode(clip_bytes):
    with pytest.raises(TaliDecodeError, match="video codec 'mpeg4' is not supported; allowed: h264"):
        open_clip(_mpeg4_clip(), item_idx=3)
    with pytest.raises(TaliDecodeError, match="audio codec 'aac' is not supported"):
        open_clip(clip_bytes, item_idx=3, limits=ClipLimits(codecs=("h264",)))
    with pytest.raises(TaliConfigError, match="VideoConfig.codecs must be a tuple"):
        VideoConfig(codecs="h264")
    assert TaliConfig().video.clip_limits == ClipLimits()


def _growing_clip() -> bytes:
    """An mp4 whose header (and first GOP) are 64x48, then a GOP whose in-band SPS says 320x240."""

    def encode(w: int, h: int, fmt: str) -> bytes:
        out = io.BytesIO()
        with av.open(out, "w", format=fmt) as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"preset": "ultrafast", "g": "5"}
            for i in range(5):
                frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 30 * i, np.uint8), format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return out.getvalue()

    out = io.BytesIO()
    with av.open(io.BytesIO(encode(64, 48, "mp4"))) as template, av.open(out, "w", format="mp4") as target:
        like = template.streams.video[0]
        stream = target.add_stream_from_template(like)
        i = 0
        for raw in (encode(64, 48, "h264"), encode(320, 240, "h264")):
            with av.open(io.BytesIO(raw), format="h264") as source:
                for packet in source.demux(source.streams.video[0]):
                    if packet.size:
                        packet.stream, packet.time_base = stream, like.time_base
                        packet.pts = packet.dts = i * like.time_base.denominator // 10
                        target.mux(packet)
                        i += 1
    return out.getvalue()


def test_a_frame_larger_than_its_header_is_refused_by_the_decoder():
    data = _growing_clip()
    limits = ClipLimits(max_frame_pixels=64 * 48)
    with open_clip(data, item_idx=3, limits=limits) as clip:
        assert (clip.info.width, clip.info.height) == (64, 48)  # the probe believes the header
        early = decode_frames_played_at(clip, [0.1], size=None)
        assert early.pixels.shape == (1, 3, 48, 64)
    refused = pytest.raises(TaliDecodeError, match=r"cannot decode youtube_video_content.*\[item_idx=3")
    with open_clip(data, item_idx=3, limits=limits) as clip, refused:
        decode_frames_played_at(clip, [0.85], size=None)  # FFmpeg refuses the 320x240 frame
    with open_clip(data, item_idx=3) as clip:  # within the default limit it decodes
        assert decode_frames_played_at(clip, [0.85], size=None).pixels.shape == (1, 3, 240, 320)


class _GapClock:
    """Stands in for a clip's deadline: records when decoding checks it, in this thread's
    CPU time (FFmpeg decodes in the calling thread at ``threads=1``), so a busy machine
    preempting the test does not show up as a gap."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def check(self) -> None:
        self.times.append(time.thread_time())


def test_the_deadline_is_checked_between_decoded_packets(clip_bytes):
    # Four times 7 s apart on a 2 s GOP: whole GOPs are held, then decoded. The check
    # must come before each packet's decode, not once per demuxed packet (which let a
    # held GOP decode in one go: a 0.05 s budget stopped after 1 s).
    with open_clip(clip_bytes, item_idx=3) as clip:
        clock = _GapClock()
        clip.deadline = clock
        started = time.thread_time()
        decoded = decode_frames_played_at(clip, [1.9, 8.9, 15.9, 22.9], size=224)
        total = time.thread_time() - started
    assert decoded.decoded_packets >= 100
    gaps = np.diff([started, *clock.times])
    assert len(clock.times) >= decoded.decoded_packets
    assert gaps.max() < total / 10, (gaps.max(), total)  # measured 2.5 %; a held GOP is ~25 %
