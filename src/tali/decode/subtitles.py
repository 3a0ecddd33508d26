"""Parse TALI's subtitle YAML (``{"<absolute seconds>": text}``) safely.

The YAML is *composed* (a node graph, no Python objects constructed) and then
read by hand as a flat mapping of scalar keys to a scalar or a list of
scalars. Aliases never expand, so a "billion laughs" document stays small,
and anything that is not that flat shape is rejected with a typed error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import yaml

from tali.errors import TaliSubtitleError

__all__ = ["SubtitleLine", "lines_between", "parse_subtitles"]

_FIELD = "youtube_subtitle_text"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "null", "bool", "seq", "map", "timestamp")
)


@dataclass(frozen=True)
class SubtitleLine:
    seconds: float  # absolute, in the full video
    text: str


def _check_tag(node: yaml.Node, item_idx: int | None) -> None:
    # Only YAML's own types: a python/object tag is never constructed, but it is not subtitles either.
    if node.tag not in _ALLOWED_TAGS:
        raise TaliSubtitleError(f"unsupported YAML tag {node.tag[:60]!r}", item_idx=item_idx, field=_FIELD)


def _scalar_text(node: yaml.Node, item_idx: int | None) -> str:
    _check_tag(node, item_idx)
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            _check_tag(child, item_idx)
    if isinstance(node, yaml.ScalarNode):
        return "" if node.tag.endswith(":null") else str(node.value)
    if isinstance(node, yaml.SequenceNode) and all(isinstance(n, yaml.ScalarNode) for n in node.value):
        return "".join(str(n.value) for n in node.value if not n.tag.endswith(":null"))
    raise TaliSubtitleError(
        "subtitle text must be a string or a list of strings", item_idx=item_idx, field=_FIELD
    )


def parse_subtitles(
    text: str | bytes | None, *, item_idx: int | None = None, max_bytes: int = 4_000_000
) -> list[SubtitleLine]:
    """Every line, sorted by time. Null or empty text (or ``{}``) gives no lines."""
    if text is None:
        return []
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TaliSubtitleError(
                f"subtitles are not UTF-8: {exc}", item_idx=item_idx, field=_FIELD
            ) from exc
    if not isinstance(text, str):
        raise TaliSubtitleError(
            f"subtitles must be text, got {type(text).__name__}", item_idx=item_idx, field=_FIELD
        )
    if len(text) > max_bytes:
        raise TaliSubtitleError(
            f"subtitles are {len(text)} characters, over the {max_bytes} limit",
            item_idx=item_idx,
            field=_FIELD,
        )
    if not text.strip():
        return []
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise TaliSubtitleError(
            f"subtitles are not valid YAML: {exc}", item_idx=item_idx, field=_FIELD
        ) from exc
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null")):
        return []
    _check_tag(root, item_idx)
    if not isinstance(root, yaml.MappingNode):
        raise TaliSubtitleError(
            f"subtitles must be a mapping of timestamps to text, got a {root.id}",
            item_idx=item_idx,
            field=_FIELD,
        )
    lines = []
    for key, value in root.value:
        if not isinstance(key, yaml.ScalarNode):
            raise TaliSubtitleError("subtitle timestamp must be a number", item_idx=item_idx, field=_FIELD)
        try:
            seconds = float(key.value)
        except ValueError:
            raise TaliSubtitleError(
                f"subtitle timestamp {key.value[:40]!r} is not a number of seconds",
                item_idx=item_idx,
                field=_FIELD,
            ) from None
        if not math.isfinite(seconds):
            raise TaliSubtitleError(
                f"subtitle timestamp {key.value!r} is not finite", item_idx=item_idx, field=_FIELD
            )
        lines.append(SubtitleLine(seconds, _scalar_text(value, item_idx)))
    lines.sort(key=lambda line: line.seconds)
    return lines


def lines_between(lines: list[SubtitleLine], start: float, end: float) -> list[SubtitleLine]:
    """Lines whose timestamp lies in ``[start, end]`` (absolute seconds), in order."""
    return [line for line in lines if start <= line.seconds <= end]
