"""Text augmentation: which Wikipedia language and caption field, which subtitle lines.

- ``language_weights``: the language is drawn among the row's languages with
  these weights (languages not listed weigh ``other_weight``); a row with none
  of positive weight keeps the config's choice.
- ``caption_fields``: the caption is drawn from these WIT fields (weights),
  among those that are non-empty for the chosen language; none non-empty: the
  usual caption rule.
- ``subtitle_dropout``: each subtitle line of the window is dropped with this
  probability (subtitles are read by :func:`tali.sample.text.subtitles`, which gives
  them ``line_seconds``, float64 ``[L]`` on the sample's output timeline, and ``line_texts``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tali.errors import TaliConfigError
from tali.schema import WitField

__all__ = ["CAPTION_FIELDS", "TextAugment", "choose_caption_field", "weighted_language"]

CAPTION_FIELDS = (
    str(WitField.CAPTION_REFERENCE_DESCRIPTION),
    str(WitField.CAPTION_TITLE_AND_REFERENCE_DESCRIPTION),
    str(WitField.CAPTION_ALT_TEXT_DESCRIPTION),
)


def _weights(
    owner: str, name: str, value: Any, allowed: tuple[str, ...] | None
) -> tuple[tuple[str, float], ...]:
    items = tuple(value.items()) if isinstance(value, Mapping) else tuple(value)
    out = []
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise TaliConfigError(f"{owner}.{name} must map names to weights, got {item!r}")
        key, weight = item
        if allowed is not None and key not in allowed:
            raise TaliConfigError(f"{owner}.{name}: {key!r} is not allowed; choose from {', '.join(allowed)}")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0:
            raise TaliConfigError(f"{owner}.{name}[{key!r}] must be a weight >= 0, got {weight!r}")
        out.append((str(key), float(weight)))
    return tuple(sorted(out))


@dataclass(frozen=True, kw_only=True)
class TextAugment:
    """See the module docstring. Mappings are stored as sorted ``(name, weight)``
    pairs so the config stays hashable and its fingerprint stable."""

    language_weights: Any = None
    other_weight: float = 0.0
    caption_fields: Any = None
    subtitle_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.language_weights is not None:
            object.__setattr__(
                self,
                "language_weights",
                _weights("TextAugment", "language_weights", self.language_weights, None),
            )
        if self.caption_fields is not None:
            fields = self.caption_fields
            if isinstance(fields, tuple | list) and all(isinstance(f, str) for f in fields):
                fields = {f: 1.0 for f in fields}
            object.__setattr__(
                self, "caption_fields", _weights("TextAugment", "caption_fields", fields, CAPTION_FIELDS)
            )
        if not isinstance(self.other_weight, int | float) or self.other_weight < 0:
            raise TaliConfigError(f"TextAugment.other_weight must be >= 0, got {self.other_weight!r}")
        if not isinstance(self.subtitle_dropout, int | float) or not 0 <= self.subtitle_dropout < 1:
            raise TaliConfigError(
                f"TextAugment.subtitle_dropout must be in [0, 1), got {self.subtitle_dropout!r}"
            )


def weighted_language(languages: list[str], cfg: TextAugment, rng: np.random.Generator) -> int | None:
    """Index into ``languages`` drawn by weight; ``None`` when every weight is 0. One draw."""
    u = float(rng.random())
    table = dict(cfg.language_weights or ())
    w = np.array([table.get(lang, cfg.other_weight) for lang in languages], dtype=np.float64)
    total = w.sum()
    if total <= 0:
        return None
    return min(int(np.searchsorted(np.cumsum(w) / total, u, side="right")), len(languages) - 1)


def choose_caption_field(
    wit: Mapping[str, list[Any]], k: int, cfg: TextAugment, rng: np.random.Generator
) -> str | None:
    """A caption text for language ``k`` from a weighted field; ``None``: use the usual rule."""
    u = float(rng.random())
    pairs = [(f, w) for f, w in (cfg.caption_fields or ()) if w > 0]
    present = [(f, w) for f, w in pairs if isinstance(wit[f][k], str) and wit[f][k].strip()]
    if not present:
        return None
    w = np.array([w for _, w in present])
    index = min(int(np.searchsorted(np.cumsum(w) / w.sum(), u, side="right")), len(present) - 1)
    return wit[present[index][0]][k]
