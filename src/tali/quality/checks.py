"""Per-row validation checks, each reading only the columns it needs.

A check takes one row (a dict of its projected columns) and raises a
``TaliDataError`` naming the row and field when the row is bad; the
validator records the error class and message. Checks decode for real:
the mp4 opens and both streams decode across the clip, the image decodes,
the subtitle YAML parses to timestamp -> text, the WIT lists line up.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tali.decode.clip import open_clip
from tali.decode.image import decode_image
from tali.decode.index import audit_timestamps
from tali.decode.subtitles import parse_subtitles
from tali.errors import TaliDataError, TaliDecodeError, TaliSchemaError
from tali.limits import ClipLimits, renamed
from tali.quality.scan import scan_clip
from tali.schema import TALI_SCHEMA, Column, ImageField, WitField
from tali.text import read_wit

__all__ = [
    "CHECKS",
    "Check",
    "CheckLimits",
    "check_shard_schema",
    "columns_for_checks",
    "parse_start_seconds",
]


@dataclass(frozen=True, kw_only=True)
class CheckLimits:
    """Bounds that keep one hostile row from costing unbounded time or memory."""

    max_image_pixels: int = 64_000_000
    max_subtitle_bytes: int = 4_000_000
    max_text_chars: int = 1_000_000
    #: Wall-clock budget for decoding one clip end to end (was ``max_clip_seconds``).
    max_decode_seconds: float = 60.0
    max_subtitle_nodes: int = 500_000
    max_subtitle_aliases: int = 10_000
    max_jpeg_scans: int = 64
    #: Wall-clock budget for decoding one image (was ``max_image_seconds``).
    max_image_decode_seconds: float = 10.0
    #: What a clip may hold, checked at open (the loaders' ``VideoConfig`` fields).
    clip: ClipLimits = dataclasses.field(default_factory=ClipLimits)
    #: Longest span a clip's frame timestamps may cover, media seconds (``WindowConfig.max_clip_seconds``;
    #: was ``max_clip_length_seconds``).
    max_clip_seconds: float = 600.0
    #: Largest composition offset or gap between frames a clip's timestamps may have.
    max_frame_gap_seconds: float = 10.0
    #: Deprecated keywords, accepted with a ``DeprecationWarning``.
    max_clip_length_seconds: dataclasses.InitVar[float | None] = None
    max_image_seconds: dataclasses.InitVar[float | None] = None

    def __post_init__(self, max_clip_length_seconds: float | None, max_image_seconds: float | None) -> None:
        renamed(self, "max_clip_length_seconds", max_clip_length_seconds, "max_clip_seconds")
        renamed(self, "max_image_seconds", max_image_seconds, "max_image_decode_seconds")


Check = Callable[[Mapping[str, Any], CheckLimits], None]


def _item(row: Mapping[str, Any]) -> int | None:
    value = row.get(str(Column.ITEM_IDX))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_item_idx(row: Mapping[str, Any], limits: CheckLimits) -> None:
    if _item(row) is None:
        raise TaliSchemaError("item_idx is null or not an integer", field=str(Column.ITEM_IDX))


def check_clip(row: Mapping[str, Any], limits: CheckLimits) -> None:
    item_idx = _item(row)
    data = row.get(str(Column.YOUTUBE_VIDEO_CONTENT))
    with open_clip(
        data, item_idx=item_idx, max_seconds=limits.max_decode_seconds, limits=limits.clip
    ) as clip:
        # Timestamps first: hostile ones (offsets of hours, a 23 h gap) would give frames
        # outside their window, and a full decode of them is the slow part.
        problems = audit_timestamps(
            clip,
            max_clip_seconds=limits.max_clip_seconds,
            max_gap_seconds=limits.max_frame_gap_seconds,
        )
        if problems:
            raise TaliDecodeError(
                "clip timestamps are not usable: " + "; ".join(problems),
                item_idx=item_idx,
                field=str(Column.YOUTUBE_VIDEO_CONTENT),
            )
        scan_clip(clip, stats=False)
    size = row.get(str(Column.YOUTUBE_VIDEO_SIZE))
    if size is not None and data is not None and size != len(data):
        raise TaliDataError(
            f"youtube_video_size says {size} bytes but the clip has {len(data)}",
            item_idx=item_idx,
            field=str(Column.YOUTUBE_VIDEO_SIZE),
        )


def check_image(row: Mapping[str, Any], limits: CheckLimits) -> None:
    value = row.get(str(Column.IMAGE))
    data = value.get(str(ImageField.BYTES)) if isinstance(value, Mapping) else value
    # size=64 lets libjpeg decode at a reduced scale: every byte is still parsed.
    decode_image(
        data,
        size=64,
        max_pixels=limits.max_image_pixels,
        max_jpeg_scans=limits.max_jpeg_scans,
        max_seconds=limits.max_image_decode_seconds,
        item_idx=_item(row),
        field=str(Column.IMAGE),
    )


def check_subtitles(row: Mapping[str, Any], limits: CheckLimits) -> None:
    parse_subtitles(
        row.get(str(Column.YOUTUBE_SUBTITLE_TEXT)),
        item_idx=_item(row),
        max_bytes=limits.max_subtitle_bytes,
        max_nodes=limits.max_subtitle_nodes,
        max_aliases=limits.max_subtitle_aliases,
    )


def parse_start_seconds(raw: Any, *, item_idx: int | None) -> float:
    """``youtube_video_starting_time`` (a string of seconds) as a finite float >= 0.

    The same rule the transform applies; kept here so validation reports it
    as its own check.
    """
    field = str(Column.YOUTUBE_VIDEO_STARTING_TIME)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise TaliDataError(
            f"start time {str(raw)[:40]!r} is not a number of seconds", item_idx=item_idx, field=field
        ) from None
    if not math.isfinite(value) or value < 0:
        raise TaliDataError(
            f"start time {value} is not a finite, non-negative number of seconds",
            item_idx=item_idx,
            field=field,
        )
    return value


def check_start_time(row: Mapping[str, Any], limits: CheckLimits) -> None:
    parse_start_seconds(row.get(str(Column.YOUTUBE_VIDEO_STARTING_TIME)), item_idx=_item(row))


def check_wit(row: Mapping[str, Any], limits: CheckLimits) -> None:
    item_idx = _item(row)
    wit = read_wit(row.get(str(Column.WIT_FEATURES)), item_idx=item_idx)
    for k, language in enumerate(wit[str(WitField.LANGUAGE)]):
        if not isinstance(language, str) or not language.strip():
            raise TaliSchemaError(
                f"wit_features.language[{k}] is {language!r}, not a language code",
                item_idx=item_idx,
                field=f"{Column.WIT_FEATURES}.{WitField.LANGUAGE}",
            )
    for name, values in wit.items():
        for value in values:
            if isinstance(value, str) and len(value) > limits.max_text_chars:
                raise TaliDataError(
                    f"wit_features.{name} has a {len(value)}-character text, "
                    f"over the {limits.max_text_chars} limit",
                    item_idx=item_idx,
                    field=f"{Column.WIT_FEATURES}.{name}",
                )


def check_texts(row: Mapping[str, Any], limits: CheckLimits) -> None:
    for column in (Column.YOUTUBE_TITLE_TEXT, Column.YOUTUBE_DESCRIPTION_TEXT):
        value = row.get(str(column))
        if value is not None and len(value) > limits.max_text_chars:
            raise TaliDataError(
                f"{column} is {len(value)} characters, over the {limits.max_text_chars} limit",
                item_idx=_item(row),
                field=str(column),
            )


#: check name -> (function, the columns it reads). ``item_idx`` is always read.
CHECKS: dict[str, tuple[Check, tuple[Column, ...]]] = {
    "item_idx": (check_item_idx, ()),
    "clip": (check_clip, (Column.YOUTUBE_VIDEO_CONTENT, Column.YOUTUBE_VIDEO_SIZE)),
    "image": (check_image, (Column.IMAGE,)),
    "subtitles": (check_subtitles, (Column.YOUTUBE_SUBTITLE_TEXT,)),
    "start_time": (check_start_time, (Column.YOUTUBE_VIDEO_STARTING_TIME,)),
    "wit": (check_wit, (Column.WIT_FEATURES,)),
    "texts": (check_texts, (Column.YOUTUBE_TITLE_TEXT, Column.YOUTUBE_DESCRIPTION_TEXT)),
}


def columns_for_checks(checks: tuple[str, ...], available: tuple[str, ...]) -> list[str]:
    """The union of the columns ``checks`` read, in schema order, limited to those the shard has."""
    wanted = {str(Column.ITEM_IDX)}
    for name in checks:
        wanted.update(str(c) for c in CHECKS[name][1])
    return [name for name in TALI_SCHEMA.names if name in wanted and name in available]


def check_shard_schema(schema: pa.Schema, checks: tuple[str, ...]) -> list[tuple[str, str]]:
    """Columns the checks need that are missing or of the wrong type: ``[(field, message)]``."""
    problems = []
    needed = {str(Column.ITEM_IDX)} | {str(c) for name in checks for c in CHECKS[name][1]}
    for field in TALI_SCHEMA:
        if field.name not in schema.names:
            if field.name in needed:
                problems.append((field.name, f"shard has no {field.name} column"))
            continue
        actual = schema.field(field.name).type
        if not actual.equals(field.type):
            problems.append((field.name, f"{field.name} is {actual}, expected {field.type}"))
    return problems
