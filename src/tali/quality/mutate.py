"""Mutation operators that turn good TALI rows into hostile ones, for fuzzing loaders.

Each :class:`Mutant` is a full TALI row plus what is known about it:
``must_fail`` names the field a loader's typed error has to name when the
mutation certainly breaks the row (a truncated-to-nothing mp4, a YAML bomb,
a null struct), and is ``None`` when it may still decode (a few flipped
bytes inside H.264 slices usually decode to garbled pixels, not errors).

>>> mutants = make_mutants(base_rows, count=1000, seed=0)
>>> table = mutants_to_table(mutants)          # exact TALI schema, ready for parquet

Invalid UTF-8 cannot live in a Python ``str``; :class:`InvalidUtf8` marks
such a value and :func:`mutants_to_table` stores its raw bytes in the
string column, exactly as a broken scraper would.
"""

from __future__ import annotations

import copy
import functools
import io
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import av
import numpy as np
import pyarrow as pa

from tali.schema import TALI_SCHEMA, Column, WitField

__all__ = [
    "CACHE_ENTRY_OPS",
    "CONFIG_OPS",
    "DURATIONS_OPS",
    "FAMILIES",
    "KINDS",
    "InvalidUtf8",
    "Mutant",
    "aspect_bomb",
    "edit_list_bomb",
    "frame_size_lie",
    "jpeg_scan_bomb",
    "make_mutants",
    "mutants_to_table",
    "mutate",
    "png16",
    "png_bomb",
    "remux_without",
]

Family = Literal["clip", "image", "text"]
#: Size of the ``clip.oversized`` mutant (a valid clip padded with a ``free`` box).
OVERSIZED_CLIP_BYTES = 2_100_000
_EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n"
)
FAMILIES: tuple[Family, ...] = ("clip", "image", "text")
_V, _IMG = str(Column.YOUTUBE_VIDEO_CONTENT), str(Column.IMAGE)
_SUB, _START = str(Column.YOUTUBE_SUBTITLE_TEXT), str(Column.YOUTUBE_VIDEO_STARTING_TIME)
_WIT, _TITLE, _DESC = (
    str(Column.WIT_FEATURES),
    str(Column.YOUTUBE_TITLE_TEXT),
    str(Column.YOUTUBE_DESCRIPTION_TEXT),
)


class InvalidUtf8(bytes):
    """Bytes to store as-is in a string column (not valid UTF-8)."""


@dataclass
class Mutant:
    row: dict[str, Any]
    family: Family
    kind: str
    must_fail: str | None  # field (prefix) a typed error must name, or None if the row may decode


def remux_without(data: bytes, kind: Literal["video", "audio"]) -> bytes:
    """The same mp4 with every ``kind`` stream dropped (packets copied, nothing re-encoded)."""
    out = io.BytesIO()
    with av.open(io.BytesIO(data), "r") as source, av.open(out, "w", format="mp4") as target:
        mapping = {}
        for stream in source.streams:
            if stream.type in ("video", "audio") and stream.type != kind:
                mapping[stream.index] = target.add_stream_from_template(stream)
        for packet in source.demux():
            if packet.stream.index in mapping and packet.dts is not None:
                packet.stream = mapping[packet.stream.index]
                target.mux(packet)
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (a few hundred bytes on disk)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)  # far too little data: decoding would also fail
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _patch_avc1_size(data: bytes, width: int, height: int) -> bytes:
    """Overwrite the sample-entry width/height in the avc1 box (absurd dimensions)."""
    at = data.find(b"avc1")
    if at < 0:
        return data
    buf = bytearray(data)
    buf[at + 28 : at + 32] = struct.pack(">HH", width, height)
    return bytes(buf)


def aspect_bomb(width: int = 1, height: int = 40_000) -> bytes:
    """A valid, tiny grey PNG of ``width x height``: under any pixel limit, but "short
    side to 224" of it is 224 x 8.96 M pixels unless only the output square is computed."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (width, height), 7).save(out, "PNG")
    return out.getvalue()


@functools.lru_cache(maxsize=4)
def png16(width: int = 8000, height: int = 8000) -> bytes:
    """A valid 16-bit grey PNG (a gradient; ~124 KB at 8000 x 8000): 128 MB of pixels that
    float64 conversion of the whole image would turn into 512 MB."""
    from PIL import Image

    ramp = (np.arange(width, dtype=np.uint32) * 65535 // max(width - 1, 1)).astype(np.uint16)
    out = io.BytesIO()
    Image.fromarray(np.broadcast_to(ramp, (height, width)).copy()).save(out, "PNG")
    return out.getvalue()


@functools.lru_cache(maxsize=4)
def jpeg_scan_bomb(scans: int = 2000, side: int = 256) -> bytes:
    """A progressive JPEG whose smallest scan is repeated ``scans`` times: libjpeg walks
    every block once a scan, so decoding time grows with the repeats, not the bytes."""
    from PIL import Image

    grid = np.random.default_rng(0).integers(0, 256, (side // 16, side // 16, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(grid).resize((side, side)).save(out, "JPEG", quality=50, progressive=True)
    data = out.getvalue()
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
    eoi = data.rfind(b"\xff\xd9")
    bounds = list(zip(starts, starts[1:] + [eoi], strict=True))
    start, end = min(bounds, key=lambda b: b[1] - b[0])
    return data[:eoi] + data[start:end] * scans + data[eoi:]


def _boxes_at(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    out, at = [], start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        if size < 8 or at + size > end:
            break
        out.append((kind, at, size))
        at += size
    return out


def _box_path(data: bytes, path: Sequence[bytes]) -> list[tuple[int, int]]:
    """``(offset, size)`` of each box along ``path`` (the first match at each level)."""
    found, start, end = [], 0, len(data)
    for kind in path:
        match = next(((at, size) for k, at, size in _boxes_at(data, start, end) if k == kind), None)
        if match is None:
            return []
        found.append(match)
        start, end = match[0] + 8, match[0] + match[1]
    return found


def edit_list_bomb(data: bytes, entries: int = 200_000) -> bytes:
    """The clip with its first track's edit list replaced by ``entries`` copies of one
    edit (FFmpeg rebuilds its index once per entry: ~1 GB at open for 200 k).
    Needs a clip whose moov follows mdat (PyAV's default), so no chunk offset moves."""
    trak = _box_path(data, [b"moov", b"trak"])
    if not trak:
        return data
    moov_at, trak_at = trak[0][0], trak[1][0]
    edit = struct.pack(">IiHH", 1000, 0, 1, 0)  # duration, media_time, rate 1.0
    elst = b"\x00\x00\x00\x00" + struct.pack(">I", entries) + edit * entries
    edts = (
        struct.pack(">I4s", 8 + 8 + len(elst), b"edts") + struct.pack(">I4s", 8 + len(elst), b"elst") + elst
    )
    tkhd = _box_path(data, [b"moov", b"trak", b"tkhd"])
    if not tkhd:
        return data
    insert = tkhd[2][0] + tkhd[2][1]  # right after the track header, where muxers put it
    old = _box_path(data, [b"moov", b"trak", b"edts"])
    buf = bytearray(data)
    grow = len(edts)
    if old and old[2][0] >= insert:  # drop the existing edts first (it follows tkhd)
        at, size = old[2]
        del buf[at : at + size]
        grow -= size
    buf[insert:insert] = edts
    for at in (moov_at, trak_at):
        (size,) = struct.unpack_from(">I", buf, at)
        struct.pack_into(">I", buf, at, size + grow)
    return bytes(buf)


@functools.lru_cache(maxsize=2)
def frame_size_lie(width: int = 3000, height: int = 3000, frames: int = 2) -> bytes:
    """An mp4 whose sample entry and avcC say 64 x 64 while every keyframe carries its own
    SPS for ``width x height`` (FFmpeg believes the frames: the probe decodes at that size)."""

    def encode(w: int, h: int, fmt: str) -> bytes:
        out = io.BytesIO()
        with av.open(out, "w", format=fmt) as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"preset": "ultrafast"}
            for i in range(frames):
                frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 40 * i, np.uint8), format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return out.getvalue()

    small, raw = encode(64, 64, "mp4"), encode(width, height, "h264")
    out = io.BytesIO()
    with (
        av.open(io.BytesIO(small), "r") as template,
        av.open(io.BytesIO(raw), "r", format="h264") as source,
        av.open(out, "w", format="mp4") as target,
    ):
        like = template.streams.video[0]
        stream = target.add_stream_from_template(like)
        for i, packet in enumerate(p for p in source.demux(source.streams.video[0]) if p.size):
            packet.stream = stream
            if like.time_base is not None:
                packet.time_base = like.time_base
            packet.pts = packet.dts = i * 512
            target.mux(packet)
    return out.getvalue()


@functools.lru_cache(maxsize=2)
def _mpeg4_clip() -> bytes:
    """A valid mp4 in MPEG-4 Part 2: a codec TALI clips never use."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def _claim_samples(data: bytes, count: int = 2**31) -> bytes:
    """The first ``stsz`` box claims ``count`` samples (in 4 bytes)."""
    at = data.find(b"stsz")
    if at < 0:
        return data
    buf = bytearray(data)
    struct.pack_into(">I", buf, at + 4 + 8, count)  # after type, version+flags, sample_size
    return bytes(buf)


def _pad(data: bytes, size: int) -> bytes:
    """The clip followed by a ``free`` box up to ``size`` bytes (still a valid mp4)."""
    extra = max(size - len(data), 8)
    return data + struct.pack(">I4s", extra, b"free") + bytes(extra - 8)


def _flip(data: bytes, rng: np.random.Generator, count: int) -> bytes:
    buf = np.frombuffer(data, np.uint8).copy()
    where = rng.integers(0, buf.size, size=count)
    buf[where] ^= rng.integers(1, 256, size=count, dtype=np.uint8)
    return buf.tobytes()


def _zero(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    start = int(rng.integers(0, len(buf)))
    length = int(rng.integers(1, max(2, len(buf) // 8)))
    buf[start : start + length] = bytes(min(length, len(buf) - start))
    return bytes(buf)


Op = Callable[[dict[str, Any], np.random.Generator], str | None]


def _set(field: str, value: Any, fails: str | None) -> Op:
    def op(row: dict[str, Any], rng: np.random.Generator) -> str | None:
        row[field] = value
        return fails

    return op


def _clip_ops() -> dict[str, Op]:
    def with_clip(fn: Callable[[bytes, np.random.Generator], bytes], fails: bool) -> Op:
        def op(row: dict[str, Any], rng: np.random.Generator) -> str | None:
            row[_V] = fn(row[_V], rng)
            return _V if fails else None

        return op

    return {
        "clip.truncate_head": with_clip(lambda d, r: d[: int(r.integers(0, 64))], True),
        "clip.truncate": with_clip(lambda d, r: d[: int(r.integers(64, len(d)))], False),
        "clip.flip": with_clip(lambda d, r: _flip(d, r, int(r.integers(1, 64))), False),
        "clip.zero": with_clip(_zero, False),
        "clip.garbage": with_clip(lambda d, r: r.integers(0, 256, len(d), dtype=np.uint8).tobytes(), True),
        "clip.no_video": with_clip(lambda d, r: remux_without(d, "video"), True),
        "clip.no_audio": with_clip(lambda d, r: remux_without(d, "audio"), True),
        "clip.absurd_size": with_clip(lambda d, r: _patch_avc1_size(d, 65535, 65535), False),
        "clip.edit_list_bomb": with_clip(lambda d, r: edit_list_bomb(d, 20_000), True),
        "clip.sample_count_bomb": with_clip(lambda d, r: _claim_samples(d), True),
        "clip.frame_size_lie": with_clip(lambda d, r: frame_size_lie(), True),
        "clip.codec_not_allowed": with_clip(lambda d, r: _mpeg4_clip(), True),
        # Over the fuzz corpus's 2 MB VideoConfig.max_clip_bytes (the default is 64 MB).
        "clip.oversized": with_clip(lambda d, r: _pad(d, OVERSIZED_CLIP_BYTES), True),
        "clip.null": _set(_V, None, _V),
        "clip.empty": _set(_V, b"", _V),
    }


def _image_ops() -> dict[str, Op]:
    def with_bytes(fn: Callable[[bytes, np.random.Generator], bytes | None], fails: bool) -> Op:
        def op(row: dict[str, Any], rng: np.random.Generator) -> str | None:
            row[_IMG] = {"bytes": fn(row[_IMG]["bytes"], rng), "path": None}
            return _IMG if fails else None

        return op

    return {
        "image.truncate": with_bytes(lambda d, r: d[: int(r.integers(0, len(d) // 2))], True),
        "image.flip": with_bytes(lambda d, r: _flip(d, r, int(r.integers(1, 16))), False),
        "image.zero": with_bytes(_zero, False),
        "image.garbage": with_bytes(lambda d, r: r.integers(0, 256, len(d), dtype=np.uint8).tobytes(), True),
        "image.bomb": with_bytes(lambda d, r: png_bomb(), True),
        "image.absurd_tiny": with_bytes(lambda d, r: png_bomb(0, 5), True),
        "image.aspect_bomb": with_bytes(lambda d, r: aspect_bomb(1, 40_000), False),
        "image.aspect_bomb_wide": with_bytes(lambda d, r: aspect_bomb(400_000, 1), False),
        "image.png16": with_bytes(lambda d, r: png16(2000, 2000), False),
        "image.jpeg_scan_bomb": with_bytes(lambda d, r: jpeg_scan_bomb(), True),
        # PostScript: Pillow's EPS plugin would hand it to Ghostscript.
        "image.eps": with_bytes(lambda d, r: _EPS, True),
        "image.null_bytes": with_bytes(lambda d, r: None, True),
        "image.null_struct": _set(_IMG, None, _IMG),
        # A path must never be opened: bytes are null, the path points at a real file.
        "image.path_only": _set(_IMG, {"bytes": None, "path": "/etc/hostname"}, _IMG),
    }


def _billion_laughs(levels: int = 9) -> str:
    """Nine levels of nine aliases each: 9**9 "lol"s if anything expanded them.
    Keys are valid timestamps, so only the alias values can be rejected."""
    lines = ['0.5: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for k in range(1, levels):
        prev, cur = chr(ord("a") + k - 1), chr(ord("a") + k)
        lines.append(f"{k}.5: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _wit_op(kind: str) -> Op:
    def op(row: dict[str, Any], rng: np.random.Generator) -> str | None:
        wit = row[_WIT]
        if kind == "null":
            row[_WIT] = None
        elif kind == "null_language":
            wit[str(WitField.LANGUAGE)] = None
        elif kind == "empty_language":
            wit[str(WitField.LANGUAGE)] = []
        elif kind == "mismatched":
            name = str(list(WitField)[int(rng.integers(1, len(WitField)))])
            column = wit.get(name) or []
            wit[name] = column + [column[0] if column else None] * int(rng.integers(1, 3))
        elif kind == "huge":
            wit[str(WitField.CAPTION_REFERENCE_DESCRIPTION)] = ["x" * 20_000] * len(
                wit[str(WitField.LANGUAGE)]
            )
        return _WIT if kind != "huge" else f"{_WIT}."

    return op


def _text_ops() -> dict[str, Op]:
    def subtitle(value: Any) -> Op:
        return _set(_SUB, value, _SUB)

    return {
        "text.title_invalid_utf8": _set(_TITLE, InvalidUtf8(b"\xff\xfe title"), _TITLE),
        "text.description_invalid_utf8": _set(_DESC, InvalidUtf8(b"desc \xc3\x28"), _DESC),
        "text.title_huge": _set(_TITLE, "t" * 20_000, _TITLE),
        "text.description_huge": _set(_DESC, "d" * 20_000, _DESC),
        "text.title_unicode": _set(_TITLE, "\u202e\U0001f600\x00\ud7ff title", None),
        "text.title_null": _set(_TITLE, None, None),
        "subtitles.invalid_utf8": _set(_SUB, InvalidUtf8(b"1.5: \xff\xff"), _SUB),
        "subtitles.huge": subtitle("9.5: " + "s" * 60_000),
        "subtitles.billion_laughs": subtitle(_billion_laughs()),
        "subtitles.deep_nesting": subtitle("[" * 50_000 + "]" * 50_000),
        # One anchored list aliased by many keys: cheap to write, costly to expand.
        "subtitles.alias_fanout": subtitle(
            "0.5: &a [" + ",".join(["w"] * 500) + "]\n" + "".join(f"{k}.5: *a\n" for k in range(1, 3000))
        ),
        # One scalar aliased by every line: a window text of 3,000 x 2 KB.
        "subtitles.scalar_alias_fanout": subtitle(
            "0.5: &a " + "x" * 2000 + "\n" + "".join(f"{k / 100:.2f}: *a\n" for k in range(1, 3000))
        ),
        # 20 k characters but 80 KB: a cap on characters is not a cap on bytes.
        "subtitles.emoji": subtitle("1.5: " + "\U0001f600" * 20_000 + "\n"),
        "subtitles.dense_nodes": subtitle("1.5: [" + "a," * 20_000 + "a]\n"),
        "subtitles.list": subtitle("- second 1\n- second 2\n"),
        "subtitles.scalar": subtitle("just some text"),
        "subtitles.nested_mapping": subtitle("1.5: {a: b}\n"),
        "subtitles.bad_key": subtitle("one: hello\n"),
        "subtitles.nan_key": subtitle(".nan: hello\n"),
        "subtitles.inf_key": subtitle("1e999: hello\n"),
        "subtitles.tab_garbage": subtitle("\t\x00\x01: ]["),
        "subtitles.null": _set(_SUB, None, None),
        "start.not_number": _set(_START, "abc", _START),
        "start.negative": _set(_START, "-5", _START),
        "start.inf": _set(_START, "inf", _START),
        "start.nan": _set(_START, "nan", _START),
        "start.null": _set(_START, None, _START),
        "start.invalid_utf8": _set(_START, InvalidUtf8(b"\xff12"), _START),
        "wit.null": _wit_op("null"),
        "wit.null_language": _wit_op("null_language"),
        "wit.empty_language": _wit_op("empty_language"),
        "wit.mismatched_lengths": _wit_op("mismatched"),
        "wit.huge_caption": _wit_op("huge"),
    }


_OPS: dict[Family, dict[str, Op]] = {"clip": _clip_ops(), "image": _image_ops(), "text": _text_ops()}


def _subtitle_flip(row: dict[str, Any], rng: np.random.Generator) -> str | None:
    text = row.get(_SUB)
    if text:
        raw = _flip(text.encode(), rng, int(rng.integers(1, 8)))
        row[_SUB] = raw.decode("utf-8", errors="replace")  # random edits, still text
    return None


_OPS["text"]["subtitles.flip"] = _subtitle_flip


#: Every mutation operator name, e.g. ``"subtitles.billion_laughs"``.
KINDS: tuple[str, ...] = tuple(kind for family in FAMILIES for kind in _OPS[family])


def mutate(row: dict[str, Any], kind: str, *, seed: int = 0) -> Mutant:
    """One named mutation of a copy of ``row``."""
    for family in FAMILIES:
        if kind in _OPS[family]:
            out = copy.deepcopy(row)
            fails = _OPS[family][kind](out, np.random.default_rng(seed))
            return Mutant(row=out, family=family, kind=kind, must_fail=fails)
    raise KeyError(f"unknown mutation {kind!r}; choose from {', '.join(KINDS)}")


def make_mutants(
    base_rows: Sequence[dict[str, Any]],
    *,
    counts: dict[Family, int],
    seed: int = 0,
    first_item_idx: int = 1_000_000,
) -> list[Mutant]:
    """``counts[family]`` mutants per family, cycling through that family's operators
    (so every operator is used) over randomly chosen base rows. Each mutant gets
    its own ``item_idx`` so errors can be matched to mutants."""
    rng = np.random.default_rng(seed)
    out: list[Mutant] = []
    next_id = first_item_idx
    for family in FAMILIES:
        ops = list(_OPS[family].items())
        for k in range(counts.get(family, 0)):
            kind, op = ops[k % len(ops)]
            row = copy.deepcopy(base_rows[int(rng.integers(0, len(base_rows)))])
            row[str(Column.ITEM_IDX)] = next_id
            fails = op(row, rng)
            if isinstance(row.get(_V), bytes) and kind.startswith("clip."):
                row[str(Column.YOUTUBE_VIDEO_SIZE)] = len(row[_V])
            out.append(Mutant(row=row, family=family, kind=kind, must_fail=fails))
            next_id += 1
    return out


def mutants_to_table(mutants: Sequence[Mutant]) -> pa.Table:
    """The rows as a table in the exact TALI schema (invalid UTF-8 stored raw)."""
    columns = {}
    for field in TALI_SCHEMA:
        values = [m.row.get(field.name) for m in mutants]
        if pa.types.is_string(field.type) and any(isinstance(v, InvalidUtf8) for v in values):
            raw = [v if isinstance(v, bytes) else (None if v is None else v.encode()) for v in values]
            columns[field.name] = pa.array(raw, pa.binary()).view(pa.string())
        else:
            columns[field.name] = pa.array(values, field.type)
    return pa.table(columns, schema=TALI_SCHEMA)


# --- files next to the data: SampleCache entries and tali-durations.json ------------------
#
# Not rows but files a loader reads beside them, from a directory others can write to. Each
# operator changes one file in place; the loader must never serve what it planted (another
# row's sample, a length x10), never read without bound (a sparse 64 GB file, /dev/zero, a
# FIFO) and fall back to computing (cache) or to the nominal clip length (durations).

#: ``kind -> op(path, rng, other)``: ``other`` is a valid file of another row or shard set.
FileOp = Callable[[Any, np.random.Generator, bytes], None]


def _replace_with(path: Any, make: Callable[[Any], None]) -> None:
    import os
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
    make(path)


def _write(data: bytes) -> Callable[[Any], None]:
    def make(path: Any) -> None:
        with open(path, "wb") as handle:
            handle.write(data)

    return make


def _sparse(size: int) -> Callable[[Any], None]:
    def make(path: Any) -> None:
        with open(path, "wb") as handle:
            handle.truncate(size)  # no disk used

    return make


def _special(kind: str) -> Callable[[Any], None]:
    import os

    def make(path: Any) -> None:
        if kind == "dev_zero":
            os.symlink("/dev/zero", path)
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            os.mkdir(path)

    return make


def _in_place(change: Callable[[bytes, np.random.Generator], bytes]) -> FileOp:
    def op(path: Any, rng: np.random.Generator, other: bytes) -> None:
        with open(path, "rb") as handle:
            data = handle.read()
        _replace_with(path, _write(change(data, rng)))

    return op


def _safetensors_without_manifest() -> bytes:
    import safetensors.numpy

    return safetensors.numpy.save({"x": np.zeros(4, np.float32)})


def _pickled() -> bytes:
    import pickle

    return pickle.dumps({"x": list(range(4))})


#: Hostile SampleCache entries (``cache.*``): every one must be a miss and be recomputed.
CACHE_ENTRY_OPS: dict[str, FileOp] = {
    "cache.other_row": lambda p, r, other: _replace_with(p, _write(other)),
    "cache.truncated": _in_place(lambda d, r: d[: int(r.integers(0, max(len(d) - 1, 1)))]),
    "cache.flipped_header": _in_place(lambda d, r: _flip(d[:64], r, 8) + d[64:]),
    "cache.empty": lambda p, r, other: _replace_with(p, _write(b"")),
    "cache.sparse_64GB": lambda p, r, other: _replace_with(p, _sparse(64 << 30)),
    "cache.dev_zero": lambda p, r, other: _replace_with(p, _special("dev_zero")),
    "cache.fifo": lambda p, r, other: _replace_with(p, _special("fifo")),
    "cache.directory": lambda p, r, other: _replace_with(p, _special("directory")),
    "cache.foreign_safetensors": lambda p, r, other: _replace_with(
        p, _write(_safetensors_without_manifest())
    ),
    "cache.pickle": lambda p, r, other: _replace_with(p, _write(_pickled())),
}


def _edit_lengths(change: Callable[[dict[str, Any], np.random.Generator], dict[str, Any]]) -> FileOp:
    """Change every shard's lengths in a version-2 index (its digest left as written)."""

    def op(path: Any, rng: np.random.Generator, other: bytes) -> None:
        import json

        with open(path, "rb") as handle:
            blob = json.loads(handle.read())
        for entry in blob["shards"].values():
            entry["clip_seconds"] = change(entry["clip_seconds"], rng)
        _replace_with(path, _write(json.dumps(blob).encode()))

    return op


def _every(value: Any) -> Callable[[dict[str, Any], np.random.Generator], dict[str, Any]]:
    return lambda clips, rng: {k: value(v) for k, v in clips.items()}


def _shuffled(clips: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    values = list(clips.values())
    return dict(zip(clips, values[1:] + values[:1]))


def _resigned(change: Callable[[Any], Any]) -> FileOp:
    """One value replaced *and* the digest recomputed: only the value checks can catch it."""

    def op(path: Any, rng: np.random.Generator, other: bytes) -> None:
        import json

        from tali.data.durations import digest

        with open(path, "rb") as handle:
            blob = json.loads(handle.read())
        entry = next(e for e in blob["shards"].values() if e["clip_seconds"])
        key = next(iter(entry["clip_seconds"]))
        entry["clip_seconds"][key] = change(entry["clip_seconds"][key])
        blob["digest"] = digest(blob["shards"], blob["max_clip_seconds"])
        _replace_with(path, _write(json.dumps(blob).encode()))

    return op


def _stale(path: Any, rng: np.random.Generator, other: bytes) -> None:
    """An index written for other shards (``other``: the index of another shard set)."""
    _replace_with(path, _write(other))


#: Hostile ``tali-durations.json`` files (``durations.*``): the loader must never use a
#: planted length; it falls back to the nominal length with a warning.
DURATIONS_OPS: dict[str, FileOp] = {
    "durations.x10": _edit_lengths(_every(lambda v: v * 10)),
    "durations.x0.1": _edit_lengths(_every(lambda v: v * 0.1)),
    "durations.shuffled_ids": _edit_lengths(_shuffled),
    "durations.signed_infinity": _resigned(lambda v: float("inf")),
    "durations.signed_1e308": _resigned(lambda v: 1e308),
    "durations.signed_1e-9": _resigned(lambda v: 1e-9),
    "durations.signed_true": _resigned(lambda v: True),
    "durations.signed_string": _resigned(lambda v: str(v)),
    "durations.stale": _stale,
    "durations.not_json": lambda p, r, other: _replace_with(p, _write(b"{not json")),
    "durations.deep_nesting": lambda p, r, other: _replace_with(p, _write(b"[" * 100_000 + b"]" * 100_000)),
    "durations.version_99": lambda p, r, other: _replace_with(p, _write(b'{"version": 99}')),
    "durations.sparse_huge": lambda p, r, other: _replace_with(p, _sparse(1 << 40)),
    "durations.dev_zero": lambda p, r, other: _replace_with(p, _special("dev_zero")),
    "durations.fifo": lambda p, r, other: _replace_with(p, _special("fifo")),
    "durations.directory": lambda p, r, other: _replace_with(p, _special("directory")),
}


#: A valid pipeline file (YAML) the config operators start from.
PIPELINE_YAML = """config:
  modalities: [youtube_content_video, youtube_content_audio, youtube_title_text]
  window: {seconds: 2.0, start: random}
  video: {num_frames: 4}
stages:
  - decode
  - augment: {spatial: {flip_p: 0.5}}
"""


def _yaml_alias_bomb(levels: int = 12) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nconfig: {{modalities: *a{levels - 1}}}\nstages: [decode]\n"


#: Hostile pipeline/config files (``config.*``, as ``(name, text)`` for a file of that name):
#: building a pipeline from each is a ``TaliConfigError`` naming the key, or a valid pipeline,
#: in bounded time and memory; never another error, a hang or a crash.
CONFIG_OPS: dict[str, tuple[str, str | bytes]] = {
    "config.valid": ("p.yaml", PIPELINE_YAML),
    "config.nan_seconds": ("p.yaml", PIPELINE_YAML.replace("seconds: 2.0", "seconds: .nan")),
    "config.inf_start": ("p.yaml", PIPELINE_YAML.replace("start: random", "start: .inf")),
    "config.negative_frames": ("p.yaml", PIPELINE_YAML.replace("num_frames: 4", "num_frames: -4")),
    "config.huge_frames": ("p.yaml", PIPELINE_YAML.replace("num_frames: 4", "num_frames: 100000000000000")),
    "config.string_frames": ("p.yaml", PIPELINE_YAML.replace("num_frames: 4", "num_frames: lots")),
    "config.unknown_key": ("p.yaml", PIPELINE_YAML.replace("video:", "vidoe:")),
    "config.unknown_modality": ("p.yaml", PIPELINE_YAML.replace("youtube_title_text", "smell")),
    "config.python_tag": (
        "p.yaml",
        "config: !!python/object/apply:os.system [echo pwned]\nstages: [decode]\n",
    ),
    "config.alias_bomb": ("p.yaml", _yaml_alias_bomb()),
    "config.deep_yaml": ("p.yaml", "config: " + "[" * 5000 + "]" * 5000 + "\nstages: [decode]\n"),
    "config.deep_toml": ("p.toml", "[config]\nx = " + "[" * 5000 + "]" * 5000 + "\n"),
    "config.toml_nan": ("p.toml", 'stages = ["decode"]\n[config.window]\nseconds = nan\n'),
    "config.huge_file": ("p.yaml", "# " + "x" * (8 << 20) + "\nstages: [decode]\n"),
    "config.not_a_mapping": ("p.yaml", "- decode\n- decode\n"),
    "config.binary": ("p.yaml", bytes(range(256)) * 64),
    "config.duplicate_decode": ("p.yaml", "stages: [decode, decode]\n"),
    "config.augment_nan": ("p.yaml", PIPELINE_YAML.replace("flip_p: 0.5", "flip_p: .nan")),
}
