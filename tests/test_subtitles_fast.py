"""The subtitle fast path reads exactly what the event reader reads, or leaves the document to it.

The reference is ``parse_subtitles(..., fast_path=False)`` (libyaml events under the
budgets). Every document is parsed both ways: the same lines, or the same error.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tali.decode import subtitles
from tali.decode.subtitles import parse_subtitles
from tali.errors import TaliSubtitleError


def _outcome(text: str, **kwargs):
    try:
        return ("lines", parse_subtitles(text, **kwargs))
    except TaliSubtitleError as exc:
        return ("error", str(exc))


def _same_both_ways(text: str, **kwargs) -> None:
    assert _outcome(text, **kwargs) == _outcome(text, fast_path=False, **kwargs), repr(text[:300])


# Texts with every character class that changes how YAML writes or reads a scalar.
_TRICKY = st.lists(
    st.sampled_from(
        list("ab z09 .:#-?'\"&*!|>%@`,[]{}~\t\r\n\\")
        + ["\x85", "\u2028", "\ufeff", "\x00", "\x7f", "é", "—", "😀", "null", "true", ": ", " #"]
    ),
    max_size=30,
).map("".join)
_VALUES = st.one_of(
    _TRICKY,
    st.none(),
    st.lists(st.one_of(_TRICKY, st.none()), min_size=1, max_size=4),
)
_KEYS = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: f"{x:.3f}"),
    st.integers(min_value=0, max_value=10**6).map(str),
    _TRICKY,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mapping=st.dictionaries(_KEYS, _VALUES, max_size=12),
    unicode=st.booleans(),
    width=st.sampled_from([20, 80, 10_000]),
    plain_keys=st.booleans(),
)
def test_yaml_dumps_read_the_same_both_ways(mapping, unicode, width, plain_keys):
    if plain_keys:  # numbers as numbers: the keys come out unquoted
        mapping = {float(k) if _is_number(k) else k: v for k, v in mapping.items()}
    text = yaml.safe_dump(mapping, allow_unicode=unicode, width=width, default_flow_style=False)
    _same_both_ways(text)
    _same_both_ways(text, between=(-10.0, 100.0))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    base=st.dictionaries(
        st.integers(min_value=0, max_value=500).map(lambda s: f"{s}.5"),
        st.text(alphabet="ab cd", min_size=1, max_size=8),
        min_size=1,
        max_size=8,
    ),
    position=st.integers(min_value=0, max_value=10_000),
    insert=st.sampled_from(
        ["&a ", "*a", "!!python/object ", " #c", ": ", "\t", "'", '"', "- ", "  ", "\n", "{"]
    ),
)
def test_edited_documents_read_the_same_both_ways(base, position, insert):
    text = yaml.safe_dump(base)
    at = position % (len(text) + 1)
    _same_both_ways(text[:at] + insert + text[at:])


@pytest.mark.parametrize(
    "text",
    [
        "'0.5': second 0\n'1.5': second 1\n",  # the sample's form
        "'0.5':\n- second 0\n- ''\n- null\n'1.5':\n- a\n",  # lists of texts (joined), nulls left out
        "'1.5': 'it''s: fine # really'\n",  # single-quoted
        "'1.5': ~\n'2.5':\n'3.5': ''\n'4.5': 'null'\n",  # nulls and texts that look like them
        "'2.5': b\n'1.5': a\n'3.5': c\n",  # out of order (a duplicate key is refused: test_hardening)
        "1.5: a\n-2.5: b\n",  # plain numeric keys
        "'1.5': a b  c\n",  # inner spaces kept
        "'1.5': a:b\n",  # a colon inside a word
        "'1.5': a\n'2.5': b",  # no final newline
    ],
)
def test_canonical_documents_take_the_fast_path_and_agree(text):
    assert subtitles._fast_lines(text, 10_000, -1e9, 1e9) is not None
    _same_both_ways(text)


@pytest.mark.parametrize(
    "text",
    [
        "'1.5': a # comment\n",
        "'1.5': a \n",  # trailing space
        "'1.5': a:\n",
        "'1.5':  a\n",  # two spaces: YAML drops them
        "'1.5': \"quoted \\u00e9\"\n",
        "'1.5': &x a\n'2.5': *x\n",
        "'1.5': !!str a\n",
        "'1.5': a\tb\n",
        "'1.5': a\u2028b\n",
        "\ufeff'1.5': a\n",
        "'1.5': |\n  block\n",
        "'1.5': long\n  continued\n",
        "{'1.5': a}\n",
        "'1" + "0" * 400 + "': a\n",  # a key float() makes infinite
        "'1.5':\n  - indented\n",
    ],
)
def test_anything_else_goes_to_the_event_reader(text):
    assert subtitles._fast_lines(text, 10_000, -1e9, 1e9) is None
    _same_both_ways(text)


def test_the_node_budget_holds_on_the_fast_path():
    text = "".join(f"'{i}': x\n" for i in range(1000))
    with pytest.raises(TaliSubtitleError, match="node limit"):
        parse_subtitles(text, max_nodes=1000)
    assert len(parse_subtitles(text, max_nodes=2001)) == 1000
    listed = "".join(f"'{i}':\n- x\n- y\n" for i in range(300))  # 4 nodes a line: 1201 in all
    with pytest.raises(TaliSubtitleError, match="node limit"):
        parse_subtitles(listed, max_nodes=1200)
    assert len(parse_subtitles(listed, max_nodes=1201)) == 300


def test_between_keeps_the_lines_lines_between_keeps(rows):
    for row in rows.values():
        text = row["youtube_subtitle_text"]
        if not text:
            continue
        assert subtitles._fast_lines(text, 500_000, -1e9, 1e9) is not None, row["item_idx"]
        every = parse_subtitles(text)
        for lo, hi in ((0.0, 5.0), (12.5, 13.5), (1e6, 2e6)):
            assert parse_subtitles(text, between=(lo, hi)) == subtitles.lines_between(every, lo, hi)
            assert parse_subtitles(text, between=(lo, hi), fast_path=False) == parse_subtitles(
                text, between=(lo, hi)
            )
