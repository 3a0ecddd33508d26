"""Wikipedia texts from the WIT struct of parallel per-language lists.

What each text is made of (empty fields are skipped, never rendered as "None"):

- caption: ``caption_reference_description``, else
  ``caption_title_and_reference_description``, else ``caption_alt_text_description``;
- title: ``page_title`` and ``section_title``, joined by ": ";
- main body: ``context_page_description`` and ``context_section_description``,
  joined by a newline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tali.config import TextConfig
from tali.errors import TaliSchemaError
from tali.schema import Column, WitField

__all__ = ["WitTexts", "caption", "choose_language", "main_body", "read_wit", "title"]

_FIELD = str(Column.WIT_FEATURES)
WitTexts = dict[str, list[Any]]


def read_wit(value: Any, *, item_idx: int | None = None) -> WitTexts:
    """Check the struct: every field a list, all as long as ``language``."""
    if not isinstance(value, Mapping):
        raise TaliSchemaError(
            f"wit_features must be a struct of lists, got {type(value).__name__}",
            item_idx=item_idx,
            field=_FIELD,
        )
    languages = value.get(str(WitField.LANGUAGE))
    if not isinstance(languages, list) or not languages:
        raise TaliSchemaError("wit_features.language is missing or empty", item_idx=item_idx, field=_FIELD)
    out: WitTexts = {}
    for name in WitField:
        column = value.get(str(name))
        if column is None:
            column = [None] * len(languages)
        if not isinstance(column, list) or len(column) != len(languages):
            got = len(column) if isinstance(column, list) else type(column).__name__
            raise TaliSchemaError(
                f"wit_features.{name} has {got} entries but there are {len(languages)} languages",
                item_idx=item_idx,
                field=f"{_FIELD}.{name}",
            )
        out[str(name)] = column
    return out


def choose_language(wit: WitTexts, config: TextConfig, rng: np.random.Generator) -> int | None:
    """Index of the language to use; ``None`` means all. Draws from ``rng`` once, always."""
    draw = float(rng.random())
    if config.language is None:
        return None
    languages = wit[str(WitField.LANGUAGE)]
    if config.language in languages:
        return languages.index(config.language)
    if config.fallback == "first":
        return 0
    return min(int(draw * len(languages)), len(languages) - 1)


def _first(*values: Any) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _join(sep: str, *values: Any) -> str:
    return sep.join(v for v in values if isinstance(v, str) and v.strip())


def caption(wit: WitTexts, k: int) -> str:
    return _first(
        wit[str(WitField.CAPTION_REFERENCE_DESCRIPTION)][k],
        wit[str(WitField.CAPTION_TITLE_AND_REFERENCE_DESCRIPTION)][k],
        wit[str(WitField.CAPTION_ALT_TEXT_DESCRIPTION)][k],
    )


def title(wit: WitTexts, k: int) -> str:
    return _join(": ", wit[str(WitField.PAGE_TITLE)][k], wit[str(WitField.SECTION_TITLE)][k])


def main_body(wit: WitTexts, k: int) -> str:
    return _join(
        "\n",
        wit[str(WitField.CONTEXT_PAGE_DESCRIPTION)][k],
        wit[str(WitField.CONTEXT_SECTION_DESCRIPTION)][k],
    )
