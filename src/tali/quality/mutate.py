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
    "FAMILIES",
    "KINDS",
    "InvalidUtf8",
    "Mutant",
    "make_mutants",
    "mutants_to_table",
    "mutate",
    "png_bomb",
    "remux_without",
]

Family = Literal["clip", "image", "text"]
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
