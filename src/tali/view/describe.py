"""One row as the JSON the page renders: WIT texts per language, YouTube texts, subtitle
lines on the clip timeline, what the clip and image headers say.

Each part is read on its own; a bad part becomes an ``error`` string in its place (the
located message of the ``tali`` error), so one broken field never hides the rest of a row.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import av
from PIL import Image

from tali.decode.clip import open_clip
from tali.decode.subtitles import parse_subtitles
from tali.decode.video import rotation_of
from tali.errors import TaliDataError, TaliError
from tali.schema import Column, ImageField, WitField
from tali.text import read_wit
from tali.view.catalog import clean_value

__all__ = ["describe_row", "subtitle_timeline"]


def _part(build: Callable[[], Any]) -> dict[str, Any]:
    try:
        return build()
    except TaliError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _languages(row: Mapping[str, Any]) -> dict[str, Any]:
    wit = read_wit(row.get(str(Column.WIT_FEATURES)), item_idx=row.get(str(Column.ITEM_IDX)))
    languages = wit[str(WitField.LANGUAGE)]
    return {
        "languages": [{str(f): clean_value(wit[str(f)][k]) for f in WitField} for k in range(len(languages))]
    }


def start_seconds(row: Mapping[str, Any]) -> float:
    raw = row.get(str(Column.YOUTUBE_VIDEO_STARTING_TIME))
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise TaliDataError(
            f"start time {str(raw)[:40]!r} is not a non-negative number of seconds",
            item_idx=row.get(str(Column.ITEM_IDX)),
            field=str(Column.YOUTUBE_VIDEO_STARTING_TIME),
        )
    return value


def subtitle_timeline(row: Mapping[str, Any], start: float, duration: float) -> list[dict[str, Any]]:
    """Lines that show during the clip, in clip seconds. A line lasts until the next line's
    timestamp (the last one until the clip ends), so at clip time ``t`` the line showing is the
    last one with ``clip_seconds <= t``; the line just before the clip is kept because it is
    still showing at ``t = 0``."""
    lines = parse_subtitles(
        row.get(str(Column.YOUTUBE_SUBTITLE_TEXT)), item_idx=row.get(str(Column.ITEM_IDX))
    )
    out = []
    for k, line in enumerate(lines):
        begin = line.seconds - start
        end = lines[k + 1].seconds - start if k + 1 < len(lines) else max(duration, begin)
        if end > 0 and begin < duration:
            out.append(
                {"seconds": line.seconds, "clip_seconds": begin, "end_clip_seconds": end, "text": line.text}
            )
    return out


def _clip(row: Mapping[str, Any]) -> dict[str, Any]:
    data = row.get(str(Column.YOUTUBE_VIDEO_CONTENT))
    with open_clip(data, item_idx=row.get(str(Column.ITEM_IDX)), max_seconds=10.0) as clip:
        info = clip.info
        rotation = _rotation(clip)
    turned = rotation in (90, 270)
    return {
        "bytes": len(data) if data else 0,
        "duration_seconds": info.duration_seconds,
        "fps": info.fps,
        "width": info.width,
        "height": info.height,
        # What a player shows: the display matrix turns a sideways-stored phone clip upright,
        # and the loader's frames are turned the same way (decode.video.rotation_of).
        "rotation": rotation,
        "display_width": info.height if turned else info.width,
        "display_height": info.width if turned else info.height,
        "has_audio": info.has_audio,
        "audio_sample_rate": info.audio_sample_rate,
        "audio_channels": info.audio_channels,
        "audio_offset_seconds": info.audio_offset_seconds,
    }


def _rotation(clip: Any) -> int:
    """Degrees the first frame's display matrix turns the picture (0 when it cannot be read:
    the rest of the clip's header still shows)."""
    try:
        for frame in clip.container.decode(clip.video):
            return rotation_of(frame)
    except (av.FFmpegError, ValueError, TaliError):
        return 0
    return 0


def _image(row: Mapping[str, Any]) -> dict[str, Any]:
    value = row.get(str(Column.IMAGE))
    data = value.get(str(ImageField.BYTES)) if isinstance(value, Mapping) else value
    if not data:
        raise TaliDataError("image bytes are empty or null", item_idx=row.get("item_idx"), field="image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = Image.open(io.BytesIO(data))  # the header only: no pixels decoded here
            return {
                "width": header.width,
                "height": header.height,
                "mode": header.mode,
                "format": header.format,
            }
    except (OSError, ValueError, SyntaxError) as exc:
        raise TaliDataError(
            f"image header unreadable: {exc}", item_idx=row.get("item_idx"), field="image"
        ) from None


def describe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row page's data (no media bytes: those have their own URLs)."""
    clip = _part(lambda: _clip(row))
    youtube: dict[str, Any] = {
        "title": clean_value(row.get(str(Column.YOUTUBE_TITLE_TEXT))),
        "description": clean_value(row.get(str(Column.YOUTUBE_DESCRIPTION_TEXT))),
        "video_size": clean_value(row.get(str(Column.YOUTUBE_VIDEO_SIZE))),
    }
    try:
        youtube["start_seconds"] = start_seconds(row)
        duration = clip.get("duration_seconds") or 30.0
        youtube["subtitles"] = subtitle_timeline(row, youtube["start_seconds"], duration)
    except TaliError as exc:
        youtube["subtitles"] = []
        youtube["subtitle_error"] = f"{type(exc).__name__}: {exc}"
    return {
        "item_idx": clean_value(row.get(str(Column.ITEM_IDX))),
        "wit_idx": clean_value(row.get(str(Column.WIT_IDX))),
        # Shown as text, never fetched: the viewer serves only the row's own bytes.
        "image_url": clean_value(row.get(str(Column.IMAGE_URL))),
        "wikipedia": _part(lambda: _languages(row)),
        "youtube": youtube,
        "clip": clip,
        "image": _part(lambda: _image(row)),
    }
