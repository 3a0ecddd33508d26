"""Parse TALI's subtitle YAML (``{"<absolute seconds>": text}``) safely, in bounded time and memory.

The YAML is read as a stream of parser events, never composed into a node
graph nor constructed into Python objects, and checked as it goes to be a
flat mapping of scalar keys to a scalar or a list of scalars. Three budgets
hold whatever the document does, each counted *as if aliases were expanded*
(an alias costs what it stands for, every time it is used):

- ``max_nodes`` YAML nodes (scalars, lists, mappings): a 3.8 MB flat list of 1.9 M
  one-letter scalars took 32 s and 540 MB to compose; events stop at the budget;
- ``max_aliases`` alias uses;
- ``max_bytes`` bytes of UTF-8, for the source *and* for the text of all its
  lines together, so one scalar anchor aliased by thousands of keys can never
  become a multi-gigabyte window text (every text the loader builds from the
  lines is a part of that total).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from tali.errors import TaliSubtitleError

__all__ = ["SubtitleLine", "lines_between", "load_bounded_yaml", "parse_subtitles", "utf8_length"]

_FIELD = "youtube_subtitle_text"
#: Largest timestamp magnitude believed (11.6 days; YouTube's longest videos are 12 h). A key
#: such as ``1e308`` is finite, yet no window can hold it; one timestamp twice is refused too.
MAX_TIMESTAMP_SECONDS = 1e6
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "null", "bool", "seq", "map", "timestamp")
)
_NULL = "tag:yaml.org,2002:null"
_RESOLVER = yaml.resolver.Resolver()


@dataclass(frozen=True)
class SubtitleLine:
    seconds: float  # absolute, in the full video
    text: str


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8, without encoding it when its length already decides.

    A cap on bytes, not characters: 3.9 M emoji are 3.9 M characters but 15.6 MB.
    """
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", errors="surrogatepass"))


@dataclass
class _Anchor:
    kind: str  # "scalar", "seq", "map"
    text: str | None  # a scalar's text ("" for null) or a list's joined text; None for a mapping
    nodes: int
    is_null: bool = False


class _Budget:
    def __init__(self, item_idx: int | None, max_nodes: int, max_aliases: int, max_bytes: int) -> None:
        self.item_idx = item_idx
        self.max_nodes, self.max_aliases, self.max_bytes = max_nodes, max_aliases, max_bytes
        self.nodes = self.aliases = self.text_bytes = 0
        self.spent = False  # a budget ran out (not a shape error)
        self.what, self.texts = "subtitles", "subtitle texts"  # for messages

    def fail(self, message: str) -> TaliSubtitleError:
        return TaliSubtitleError(message, item_idx=self.item_idx, field=_FIELD)

    def add_nodes(self, count: int) -> None:
        self.nodes += count
        if self.nodes > self.max_nodes:
            self.spent = True
            raise self.fail(f"{self.what} expand to over {self.max_nodes} YAML nodes (the node limit)")

    def add_alias(self) -> None:
        self.aliases += 1
        if self.aliases > self.max_aliases:
            self.spent = True
            raise self.fail(f"{self.what} use over {self.max_aliases} YAML aliases (the alias limit)")

    def add_text(self, text: str) -> None:
        self.text_bytes += utf8_length(text)
        if self.text_bytes > self.max_bytes:
            self.spent = True
            raise self.fail(f"{self.texts} expand to over {self.max_bytes} bytes (the byte limit)")


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


def _tag(event: yaml.NodeEvent, kind: type[yaml.Node], budget: _Budget) -> str:
    # Only YAML's own types: a python/object tag is never constructed, but it is not subtitles either.
    tag = event.tag
    if tag is None or tag == "!":
        if isinstance(event, yaml.ScalarEvent):
            # The resolver's rule for null, without its regex walk (the hot path:
            # one call per scalar): plain ~/null/empty is null, anything else text.
            plain = event.implicit[0] and event.tag is None
            return _NULL if plain and event.value in _NULLS else "tag:yaml.org,2002:str"
        tag = _RESOLVER.resolve(kind, None, event.implicit)
    if tag not in _ALLOWED_TAGS:
        raise budget.fail(f"unsupported YAML tag {tag[:60]!r}")
    return tag


_NOT_TEXT = "subtitle text must be a string or a list of strings"


class _Reader:
    """Walks the event stream of one document; every node and alias is paid for."""

    def __init__(self, text: str, budget: _Budget) -> None:
        self.events = yaml.parse(text, Loader=_Loader)
        self.budget = budget
        self.anchors: dict[str, _Anchor] = {}

    def next(self) -> yaml.Event:
        return next(self.events)

    def alias(self, event: yaml.AliasEvent) -> _Anchor:
        anchor = self.anchors.get(event.anchor)
        if anchor is None:
            raise self.budget.fail(
                f"subtitles are not valid YAML: found undefined alias {event.anchor[:40]!r}"
            )
        self.budget.add_alias()
        self.budget.add_nodes(anchor.nodes)
        return anchor

    def scalar(self, event: yaml.ScalarEvent) -> _Anchor:
        self.budget.add_nodes(1)
        is_null = _tag(event, yaml.ScalarNode, self.budget) == _NULL
        node = _Anchor("scalar", "" if is_null else event.value, 1, is_null)
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        return node

    def sequence_of_scalars(self, start: yaml.SequenceStartEvent) -> _Anchor:
        self.budget.add_nodes(1)
        _tag(start, yaml.SequenceNode, self.budget)
        parts: list[str] = []
        nodes = 1
        # Registered while open, as the composer does: an alias to a list inside itself is a nested list.
        node = _Anchor("seq", None, 1)
        if start.anchor is not None:
            self.anchors[start.anchor] = node
        events, budget, scalar_event = self.events, self.budget, yaml.ScalarEvent
        for event in events:
            if isinstance(event, yaml.SequenceEndEvent):
                break
            if type(event) is scalar_event and event.anchor is None:  # the hot path, inlined
                budget.add_nodes(1)
                nodes += 1
                if _tag(event, yaml.ScalarNode, budget) != _NULL:
                    parts.append(event.value)
                continue
            if isinstance(event, yaml.ScalarEvent):
                child = self.scalar(event)
            elif isinstance(event, yaml.AliasEvent):
                child = self.alias(event)
            else:
                self._reject_collection(event)
                raise self.budget.fail(_NOT_TEXT)
            if child.kind != "scalar":
                raise self.budget.fail(_NOT_TEXT)
            nodes += child.nodes
            if not child.is_null:
                parts.append(child.text or "")
        node.text, node.nodes = "".join(parts), nodes
        return node

    def _reject_collection(self, event: yaml.Event) -> None:
        # The tag of a nested collection is checked first, as the graph walk always did.
        if isinstance(event, yaml.SequenceStartEvent):
            _tag(event, yaml.SequenceNode, self.budget)
        elif isinstance(event, yaml.MappingStartEvent):
            _tag(event, yaml.MappingNode, self.budget)

    def value(self) -> str:
        event = self.next()
        if isinstance(event, yaml.ScalarEvent):
            node = self.scalar(event)
        elif isinstance(event, yaml.AliasEvent):
            node = self.alias(event)
        elif isinstance(event, yaml.SequenceStartEvent):
            node = self.sequence_of_scalars(event)
        else:
            self._reject_collection(event)
            raise self.budget.fail(_NOT_TEXT)
        if node.text is None:  # an alias to a mapping
            raise self.budget.fail(_NOT_TEXT)
        self.budget.add_text(node.text)
        return node.text

    def key(self, event: yaml.Event) -> float:
        if isinstance(event, yaml.ScalarEvent):
            node = self.scalar(event)
        elif isinstance(event, yaml.AliasEvent):
            node = self.alias(event)
        else:
            self._reject_collection(event)
            raise self.budget.fail("subtitle timestamp must be a number")
        if node.kind != "scalar":
            raise self.budget.fail("subtitle timestamp must be a number")
        raw = node.text or ""
        try:
            seconds = float(raw)
        except ValueError:
            raise self.budget.fail(f"subtitle timestamp {raw[:40]!r} is not a number of seconds") from None
        if not math.isfinite(seconds):
            raise self.budget.fail(f"subtitle timestamp {raw[:40]!r} is not finite")
        if abs(seconds) > MAX_TIMESTAMP_SECONDS:
            raise self.budget.fail(
                f"subtitle timestamp {raw[:40]!r} is beyond {MAX_TIMESTAMP_SECONDS:.0f} s (the timestamp limit)"
            )
        return seconds

    def document(self) -> list[SubtitleLine]:
        event = self.next()  # StreamStart
        event = self.next()
        if isinstance(event, yaml.StreamEndEvent):
            return []
        root = self.next()  # after DocumentStart
        lines: list[SubtitleLine] = []
        if isinstance(root, yaml.ScalarEvent):
            if not self.scalar(root).is_null:
                raise self.budget.fail("subtitles must be a mapping of timestamps to text, got a scalar")
        elif isinstance(root, yaml.SequenceStartEvent):
            _tag(root, yaml.SequenceNode, self.budget)
            raise self.budget.fail("subtitles must be a mapping of timestamps to text, got a sequence")
        elif isinstance(root, yaml.AliasEvent):
            raise self.budget.fail("subtitles are not valid YAML: found undefined alias")
        else:
            self.budget.add_nodes(1)
            _tag(root, yaml.MappingNode, self.budget)
            if root.anchor is not None:
                self.anchors[root.anchor] = _Anchor("map", None, 1)
            seen: set[float] = set()
            while not isinstance(event := self.next(), yaml.MappingEndEvent):
                seconds = self.key(event)
                if seconds in seen:  # YAML keys are unique; a loader would keep only the last
                    raise self.budget.fail(f"subtitle timestamp {seconds} appears more than once")
                seen.add(seconds)
                lines.append(SubtitleLine(seconds, self.value()))
        self.next()  # DocumentEnd
        if not isinstance(self.next(), yaml.StreamEndEvent):
            raise self.budget.fail("subtitles are not valid YAML: expected a single document in the stream")
        return lines


# The fast path. TALI's subtitles are ``yaml.dump`` of ``{"<seconds>": "text"}``: one line
# per entry, a quoted number, then a plain or single-quoted one-line text (or a list of
# such). libyaml spends ~1.2 ms making the events of a 6.4 KB document (~330 lines); a
# document that is entirely lines of that shape is read by two regular-expression scans
# and only the window's lines are built: 0.34 ms (benchmarks/decode/bench_subtitles.py).
# Anything else (multi-line or double-quoted texts, anchors, tags, flow style, comments,
# odd characters) goes to the event reader; tests/test_subtitles_fast.py proves both
# give the same lines or the same error.
_NUMBER = r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?"  # short: float() of it is finite and exact as YAML's
# Characters YAML reads as they are (no line break, tab, control or non-printable character,
# no BOM; PyYAML's printable set less the breaks \x85 \u2028 \u2029), in two classes:
# ``_WORD`` without the space and the colon, which may end a plain text.
_WIDE = "\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff"
_CHAR = f"[\x20-\x7e{_WIDE}]"
_WORD = f"[\x21-\x39\x3b-\x7e{_WIDE}]"
# A plain text: starts with no indicator, holds neither ": " nor " #" and ends with no
# space or colon (a run of word characters, or a colon or space that the next character
# keeps inside the text).
_PLAIN = (
    rf"(?![-?:,\[\]{{}}#&*!|>'\"%@`\x20])"  # the first character
    rf"(?:{_WORD}++|:(?={_WORD}|:)|\x20(?=[^#\n\x20]|\x20+[^#\n\x20]))++"
)
_SINGLE = rf"'((?:[\x20-\x26\x28-\x7e{_WIDE}]++|'')*+)'"
# A list of texts, one item a line at the key's indentation, as yaml.dump writes it.
_ITEM = rf"-(?:\x20(?:{_SINGLE}|({_PLAIN})))?\n"
_ITEMS = re.sub(r"\((?!\?)", "(?:", _ITEM)  # the same, capturing nothing
_LINE = (
    rf"(?:'({_NUMBER})'|({_NUMBER})):"
    rf"(?:\x20(?:{_SINGLE}|({_PLAIN}))\n|\n((?:{_ITEMS})+)|\n)"
)
_LINE_RE = re.compile(_LINE)
_ITEM_RE = re.compile(_ITEM)
_DOCUMENT_RE = re.compile(rf"(?:{_LINE})+")


def _text(single: str, plain: str) -> str | None:
    """A one-line scalar's text (``None`` for null), as the event reader gives it."""
    if single:
        return single.replace("''", "'")
    return None if plain in _NULLS else plain


def _fast_lines(text: str, max_nodes: int, lo: float, hi: float) -> list[SubtitleLine] | None:
    """The lines in ``[lo, hi]`` of a document made only of one-line entries (all of it
    checked); ``None`` for any other document or one over the node budget."""
    if not text.endswith("\n"):
        text += "\n"
    if not _DOCUMENT_RE.fullmatch(text):
        return None
    found = _LINE_RE.findall(text)
    # A map, then a key and a value a line; a list value is one node and one an item.
    nodes = 1 + 2 * len(found) + sum(items.count("\n") for *_, items in found if items)
    if nodes > max_nodes:
        return None  # the event reader reports the budget
    keys = [float(quoted or plain) for quoted, plain, *_ in found]
    if len(set(keys)) < len(keys) or any(abs(k) > MAX_TIMESTAMP_SECONDS for k in keys):
        return None  # the event reader reports it
    lines = []
    for quoted_key, plain_key, single, plain, items in found:
        seconds = float(quoted_key or plain_key)
        if not lo <= seconds <= hi:
            continue
        if items:
            parts = (_text(*item) for item in _ITEM_RE.findall(items))
            value = "".join(part for part in parts if part is not None)
        else:
            value = _text(single, plain) or ""
        lines.append(SubtitleLine(seconds, value))
    return lines


def parse_subtitles(
    text: str | bytes | None,
    *,
    item_idx: int | None = None,
    max_bytes: int = 4_000_000,
    max_nodes: int = 500_000,
    max_aliases: int = 10_000,
    between: tuple[float, float] | None = None,
    fast_path: bool = True,
) -> list[SubtitleLine]:
    """Every line, sorted by time; with ``between=(start, end)`` (absolute seconds) only
    those :func:`lines_between` would keep, the whole document still read and checked.
    Null or empty text (or ``{}``) gives no lines.

    ``fast_path=False`` reads every document through the event reader (the reference
    the fast path is tested against).

    ``max_bytes`` bounds the UTF-8 size of the document and of all its line
    texts together; ``max_nodes`` and ``max_aliases`` the YAML it may expand to.
    """
    budget = _Budget(item_idx, max_nodes, max_aliases, max_bytes)
    if text is None:
        return []
    if isinstance(text, bytes):
        if len(text) > max_bytes:
            raise budget.fail(f"subtitles are {len(text)} bytes, over the {max_bytes} limit")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise budget.fail(f"subtitles are not UTF-8: {exc}") from exc
    if not isinstance(text, str):
        raise budget.fail(f"subtitles must be text, got {type(text).__name__}")
    # Characters are a lower bound on bytes: a long text is refused without encoding it.
    size = len(text) if len(text) > max_bytes else utf8_length(text)
    if size > max_bytes:
        raise budget.fail(f"subtitles are {size}+ bytes of UTF-8, over the {max_bytes} limit")
    if not text.strip():
        return []
    lo, hi = between if between is not None else (-math.inf, math.inf)
    fast = _fast_lines(text, max_nodes, lo, hi) if fast_path else None
    if fast is not None:
        fast.sort(key=lambda line: line.seconds)
        return fast
    reader = _Reader(text, budget)
    try:
        try:
            lines = reader.document()
        except TaliSubtitleError as shape_error:
            if budget.spent:
                raise
            # Events arrive as the parser reads, so a shape error can come before a
            # syntax error further on; a broken document is reported as broken, as
            # composing it first did. The rest is read at the node budget's cost.
            for _ in reader.events:
                budget.add_nodes(1)
            raise shape_error from None
    except yaml.YAMLError as exc:
        raise budget.fail(f"subtitles are not valid YAML: {exc}") from exc
    lines.sort(key=lambda line: line.seconds)
    return lines if between is None else lines_between(lines, lo, hi)


def lines_between(lines: list[SubtitleLine], start: float, end: float) -> list[SubtitleLine]:
    """Lines whose timestamp lies in ``[start, end]`` (absolute seconds), in order."""
    return [line for line in lines if start <= line.seconds <= end]


class _PlainBudget(_Budget):
    """The subtitle budgets for any YAML document, failing with the caller's error type."""

    def __init__(self, error: Callable[[str], Exception], max_nodes: int, max_aliases: int, max_bytes: int):
        super().__init__(None, max_nodes, max_aliases, max_bytes)
        self.error = error
        self.path: list[str] = []
        self.what, self.texts = "the YAML", "its scalars"

    def fail(self, message: str) -> Exception:  # type: ignore[override]
        where = ".".join(self.path)
        return self.error(f"{message} (at {where})" if where else message)


class _PlainReader:
    """Builds plain values (dict, list, str, int, float, bool, None) from events; aliases share
    the value they name but are paid for as if expanded, so a walk over the result is bounded too."""

    def __init__(self, text: str, budget: _PlainBudget, max_depth: int) -> None:
        self.events = yaml.parse(text, Loader=_Loader)
        self.budget, self.max_depth = budget, max_depth
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.constructor = yaml.constructor.SafeConstructor()

    def node(self, event: yaml.Event, depth: int) -> tuple[Any, int]:
        budget = self.budget
        value: Any
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self.anchors:
                raise budget.fail(f"found undefined alias {event.anchor[:40]!r}")
            value, nodes = self.anchors[event.anchor]
            budget.add_alias()
            budget.add_nodes(nodes)
            return value, nodes
        if depth > self.max_depth:
            raise budget.fail(f"nested deeper than {self.max_depth} levels (the depth limit)")
        budget.add_nodes(1)
        if isinstance(event, yaml.ScalarEvent):
            tag = (
                event.tag
                if event.tag not in (None, "!")
                else _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
            )
            if tag not in _ALLOWED_TAGS:
                raise budget.fail(f"unsupported YAML tag {tag[:60]!r}")
            budget.add_text(event.value)
            value = self.constructor.construct_object(yaml.ScalarNode(tag, event.value))
            nodes = 1
        elif isinstance(event, yaml.SequenceStartEvent):
            _tag(event, yaml.SequenceNode, budget)
            value, nodes = [], 1
            if event.anchor is not None:
                self.anchors[event.anchor] = (value, nodes)
            while not isinstance(child := next(self.events), yaml.SequenceEndEvent):
                budget.path.append(f"[{len(value)}]")
                item, count = self.node(child, depth + 1)
                budget.path.pop()
                value.append(item)
                nodes += count
        elif isinstance(event, yaml.MappingStartEvent):
            _tag(event, yaml.MappingNode, budget)
            value, nodes = {}, 1
            if event.anchor is not None:
                self.anchors[event.anchor] = (value, nodes)
            while not isinstance(child := next(self.events), yaml.MappingEndEvent):
                key, count = self.node(child, depth + 1)
                if not isinstance(key, str | int | float | bool) and key is not None:
                    raise budget.fail("a mapping key must be a scalar")
                if key in value:
                    raise budget.fail(f"key {str(key)[:40]!r} is given twice")
                budget.path.append(str(key)[:40])
                item, more = self.node(next(self.events), depth + 1)
                budget.path.pop()
                value[key] = item
                nodes += count + more
        else:
            raise budget.fail(f"unexpected YAML event {type(event).__name__}")
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, nodes)
        return value, nodes


def load_bounded_yaml(
    text: str,
    *,
    error: Callable[[str], Exception],
    max_bytes: int = 1_000_000,
    max_nodes: int = 100_000,
    max_aliases: int = 1_000,
    max_depth: int = 32,
) -> Any:
    """One YAML document as plain values, under the subtitle reader's budgets (nodes and
    bytes counted with aliases expanded, alias uses) plus a nesting depth: for config and
    pipeline files. Every failure is ``error(message)``, naming where in the document."""
    budget = _PlainBudget(error, max_nodes, max_aliases, max_bytes)
    size = len(text) if len(text) > max_bytes else utf8_length(text)
    if size > max_bytes:
        raise budget.fail(f"the document is {size}+ bytes, over the {max_bytes} limit")
    reader = _PlainReader(text, budget, max_depth)
    try:
        next(reader.events)  # StreamStart
        event = next(reader.events)
        if isinstance(event, yaml.StreamEndEvent):
            return None
        value, _ = reader.node(next(reader.events), 1)
        next(reader.events)  # DocumentEnd
        if not isinstance(next(reader.events), yaml.StreamEndEvent):
            raise budget.fail("expected a single document in the stream")
    except yaml.YAMLError as exc:
        raise budget.fail(f"not valid YAML: {exc}") from None
    except RecursionError:
        raise budget.fail("nested too deeply") from None
    return value
