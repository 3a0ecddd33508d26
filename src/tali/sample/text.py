"""Text family: subtitles of the window, Wikipedia texts in the chosen language, YouTube title
and description.

``youtube_subtitle_text``   :class:`Subtitles`: ``text`` (the window's lines joined), ``num_lines``;
                            with a time map also ``line_seconds`` float64 ``[L]`` (output timeline)
                            and ``line_texts`` (``L`` strings)
``wikipedia_*_text``        :class:`Text`: ``text`` and ``language`` (lists of every language when
                            ``TextConfig.language`` is None)
``youtube_title_text`` / ``youtube_description_text``   :class:`Text`: ``text``

Every subtitle read goes through :func:`subtitles`, which always applies the config's
byte, node and alias budgets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tali.clock import Stage, timed
from tali.config import TaliConfig
from tali.decode.subtitles import parse_subtitles
from tali.errors import TaliSchemaError
from tali.sample.base import ReadContext, check_length, check_shape, start_seconds
from tali.schema import Column, SubModality
from tali.text import caption, choose_language, main_body, read_wit, title
from tali.window import Window

__all__ = ["SUBS", "Subtitles", "Text", "placeholder", "read", "subtitles"]

S = SubModality
WIKIPEDIA = (S.WIKIPEDIA_CAPTION_TEXT, S.WIKIPEDIA_TITLE_TEXT, S.WIKIPEDIA_MAIN_BODY_TEXT)
YOUTUBE = (
    (S.YOUTUBE_TITLE_TEXT, Column.YOUTUBE_TITLE_TEXT),
    (S.YOUTUBE_DESCRIPTION_TEXT, Column.YOUTUBE_DESCRIPTION_TEXT),
)
SUBS = (S.YOUTUBE_SUBTITLE_TEXT, *WIKIPEDIA, *(s for s, _ in YOUTUBE))
_BUILD = {
    S.WIKIPEDIA_CAPTION_TEXT: caption,
    S.WIKIPEDIA_TITLE_TEXT: title,
    S.WIKIPEDIA_MAIN_BODY_TEXT: main_body,
}


@dataclass(frozen=True)
class Text:
    """A text and (Wikipedia) its language; lists when every language was asked for."""

    text: str | list[str]
    language: str | list[str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.text, list):
            check_shape(
                isinstance(self.language, list) and len(self.language) == len(self.text),
                "one language per text",
                "text",
            )

    def __repr__(self) -> str:
        n = len(self.text) if isinstance(self.text, list) else 1
        return (
            f"Text(texts={n}, language={self.language!r})"
            if self.language is not None
            else f"Text(chars={len(self.text)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return (
            {"text": self.text} if self.language is None else {"text": self.text, "language": self.language}
        )


@dataclass(frozen=True)
class Subtitles:
    """The window's subtitle lines; ``line_seconds``/``line_texts`` only when re-timed."""

    text: str
    num_lines: int
    line_seconds: torch.Tensor | None = None
    line_texts: list[str] | None = None

    def __post_init__(self) -> None:
        if self.line_seconds is not None:
            check_shape(
                tuple(self.line_seconds.shape) == (self.num_lines,)
                and self.line_texts is not None
                and len(self.line_texts) == self.num_lines,
                f"{self.num_lines} lines need line_seconds [L] and L line_texts",
                S.YOUTUBE_SUBTITLE_TEXT.value,
            )

    def __repr__(self) -> str:
        return f"Subtitles(num_lines={self.num_lines}, chars={len(self.text)}, timed={self.line_seconds is not None})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "num_lines": self.num_lines}
        if self.line_seconds is not None:
            out["line_seconds"] = self.line_seconds
            out["line_texts"] = self.line_texts
        return out


def subtitles(
    config: TaliConfig,
    row: Any,
    window: Window,
    item_idx: int | None,
    *,
    to_output: Callable[[Any], Any] | None = None,
    keep: Callable[[int], np.ndarray] | None = None,
) -> Subtitles:
    """The lines of ``window`` (or the whole clip, ``TextConfig.subtitles="clip"``), never past
    the clip's end: no frame or sound is aligned with a later line. With ``to_output`` (a time
    map's clip -> output seconds) each line gets its output time; ``keep(count)`` (a bool mask)
    drops lines (the text augmentation's dropout)."""
    start = start_seconds(row, item_idx)
    if config.text.subtitles == "clip":
        lo, hi = start, start + window.clip_seconds
    else:
        lo, hi = start + window.start_seconds, start + min(window.end_seconds, window.clip_seconds)
    chosen = parse_subtitles(
        row.get(str(Column.YOUTUBE_SUBTITLE_TEXT)),
        item_idx=item_idx,
        max_bytes=config.text.max_subtitle_bytes,
        max_nodes=config.text.max_subtitle_nodes,
        max_aliases=config.text.max_subtitle_aliases,
        between=(lo, hi),
    )
    if keep is not None:
        mask = keep(len(chosen))
        chosen = [line for line, k in zip(chosen, mask) if k]
    text = " ".join(line.text for line in chosen if line.text)
    if to_output is None:
        return Subtitles(text, len(chosen))
    seconds = np.array([to_output(line.seconds - start) for line in chosen], dtype=np.float64)
    return Subtitles(text, len(chosen), torch.from_numpy(seconds), [line.text for line in chosen])


def read(ctx: ReadContext) -> dict[str, Text | Subtitles]:
    cfg, row, item_idx = ctx.config, ctx.row, ctx.item_idx
    out: dict[str, Text | Subtitles] = {}
    if cfg.wants(S.YOUTUBE_SUBTITLE_TEXT):
        assert ctx.window is not None  # the transform chooses it for subtitles too
        with timed(Stage.TEXT):
            out[S.YOUTUBE_SUBTITLE_TEXT.value] = subtitles(cfg, row, ctx.window, item_idx)
    wanted = [s for s in WIKIPEDIA if cfg.wants(s)]
    if wanted:
        with timed(Stage.TEXT):
            wit = read_wit(row.get(str(Column.WIT_FEATURES)), item_idx=item_idx)
            k = choose_language(wit, cfg.text, ctx.rng("language"))
            languages = wit["language"]
            indices = range(len(languages)) if k is None else [k]
            for sub in wanted:
                texts = [_BUILD[sub](wit, i) for i in indices]
                for text in texts:
                    check_length(
                        text, cfg.text.max_text_chars, item_idx, f"{Column.WIT_FEATURES}.{sub.value}"
                    )
                chosen = [languages[i] for i in indices]
                out[sub.value] = Text(texts[0], chosen[0]) if k is not None else Text(texts, chosen)
    for sub, column in YOUTUBE:
        if cfg.wants(sub):
            value = row.get(str(column))  # plain strings: too cheap to time
            if value is not None and not isinstance(value, str):
                raise TaliSchemaError(f"{column} must be text", item_idx=item_idx, field=str(column))
            check_length(value or "", cfg.text.max_text_chars, item_idx, str(column))
            out[sub.value] = Text(value or "")
    return out


def placeholder(config: TaliConfig, *, timed_lines: bool = False) -> dict[str, Text | Subtitles]:
    """Empty texts of a good sample's layout (``timed_lines``: subtitles as a time map leaves them)."""
    out: dict[str, Text | Subtitles] = {}
    if config.wants(S.YOUTUBE_SUBTITLE_TEXT):
        out[S.YOUTUBE_SUBTITLE_TEXT.value] = (
            Subtitles("", 0, torch.zeros(0, dtype=torch.float64), []) if timed_lines else Subtitles("", 0)
        )
    every = config.text.language is None
    for sub in WIKIPEDIA:
        if config.wants(sub):
            out[sub.value] = Text([], []) if every else Text("", "")
    for sub, _ in YOUTUBE:
        if config.wants(sub):
            out[sub.value] = Text("")
    return out
