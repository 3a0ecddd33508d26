"""The sample's layout, from the modality readers: which family makes which values,
the ``window`` entry, and the all-zero placeholder a bad row is replaced by."""

from __future__ import annotations

from typing import Any

from tali.config import TaliConfig
from tali.sample import audio, image, text, video
from tali.schema import SubModality
from tali.window import Window

__all__ = ["FAMILIES", "placeholder_values", "window_dict"]

#: Every reader module, in the order a sample's values are built.
FAMILIES = (video, audio, text, image)


def window_dict(window: Window) -> dict[str, float]:
    """``window``: ``start_seconds``, ``duration_seconds``, ``clip_seconds`` (clip timeline)."""
    return {
        "start_seconds": float(window.start_seconds),
        "duration_seconds": float(window.duration_seconds),
        "clip_seconds": float(window.clip_seconds),
    }


def placeholder_values(config: TaliConfig, *, timed_lines: bool = False) -> dict[str, Any]:
    """Every requested value with a good sample's shapes and dtypes, all zeros/empty,
    plus ``window`` when the config has one (``timed_lines``: as a time map leaves subtitles)."""
    out: dict[str, Any] = {}
    if config.needs_clip or config.wants(SubModality.YOUTUBE_SUBTITLE_TEXT):
        seconds = float(config.window.seconds or config.window.nominal_clip_seconds)
        out["window"] = window_dict(Window(0.0, seconds, seconds))
    for family in FAMILIES:
        values = (
            family.placeholder(config, timed_lines=timed_lines)
            if family is text
            else family.placeholder(config)
        )
        out.update({name: value.to_dict() for name, value in values.items()})
    return out
