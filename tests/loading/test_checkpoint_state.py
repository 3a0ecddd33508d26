"""A malformed, foreign or hostile state_dict raises TaliConfigError naming the field, at load
time; any state that loads resumes without crashing (hypothesis mutates real states)."""

from __future__ import annotations

import copy
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tali import TaliDistributedSampler, TaliStream
from tali.data.plan import Topology
from tali.data.stateful import merge_states
from tali.errors import TaliConfigError

from .conftest import TEXT

ROWS = 16


def _stream(train_files) -> TaliStream:
    return TaliStream(train_files, config=TEXT, shuffle=True, buffer_size=4)


@pytest.fixture(scope="module")
def states(train_files):
    """A mid-epoch state, and one whose ``base`` is set (the topology changed once)."""
    stream = _stream(train_files)
    for k, sample in enumerate(stream):
        stream.observe(sample)
        if k == 2:
            break
    plain = stream.state_dict()
    moved = _stream(train_files)
    moved.load_state_dict(plain)
    moved._begin_segment(Topology(1, 2))
    with_base = moved.state_dict()
    assert with_base["base"] is not None and plain["base"] is None
    return plain, with_base


CASES = {
    "not a dict": (lambda s: [1, 2], "must be a dict"),
    "sampler state": (lambda s: {"epoch": 0, "start": 3, "seed": 0}, "missing field"),
    "no counts": (
        lambda s: {k: v for k, v in s.items() if k != "counts"},
        r"missing field\(s\) \['counts'\]",
    ),
    "version": (lambda s: {**s, "version": 99}, "version 99"),
    "negative epoch": (lambda s: {**s, "epoch": -1}, "'epoch' is -1"),
    "epoch as text": (lambda s: {**s, "epoch": "1"}, "'epoch' must be an int"),
    "bool world size": (lambda s: {**s, "world_size": True}, "'world_size' must be an int"),
    "zero workers": (lambda s: {**s, "num_workers": 0}, "'num_workers' is 0"),
    "negative count": (lambda s: {**s, "counts": {0: -5}}, r"'counts\[0\]' is -5"),
    "count past the stream": (lambda s: {**s, "counts": {0: 10**6}}, r"'counts\[0\]' is 1000000"),
    "unknown stream": (lambda s: {**s, "counts": {7: 1}}, r"'counts \(stream id\)' is 7"),
    "counts as list": (lambda s: {**s, "counts": [1]}, "'counts' must be a dict"),
    "plan of another split": (lambda s: {**s, "plan": {**s["plan"], "num_rows": 99}}, "different data plan"),
    "plan as text": (lambda s: {**s, "plan": "x"}, "'plan' must be a dict"),
    "base garbage": (lambda s: {**s, "base": b"\x00not zlib"}, "'base' is corrupt"),
    "base as text": (lambda s: {**s, "base": "abc"}, "'base' must be bytes"),
    "base too short": (
        lambda s: {**s, "base": zlib.compress(np.packbits(np.ones(ROWS - 8, bool)).tobytes())},
        "'base' covers 8 rows",
    ),
    "base too long": (
        lambda s: {**s, "base": zlib.compress(np.packbits(np.ones(ROWS + 8, bool)).tobytes())},
        "'base' covers",
    ),
    "base bomb": (lambda s: {**s, "base": zlib.compress(b"\xff" * 10**7)}, "'base' covers"),
    "next worker": (lambda s: {**s, "next_worker": 5}, "'next_worker' is 5"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_malformed_state_names_its_field(train_files, states, name):
    make, message = CASES[name]
    stream = _stream(train_files)
    with pytest.raises(TaliConfigError, match=message):
        stream.load_state_dict(make(copy.deepcopy(states[1])))
    assert stream._counts == {} and stream.epoch == 0  # nothing half-loaded


def test_merge_and_sampler_states_are_checked_too(train_files, states, sample_root):
    with pytest.raises(TaliConfigError, match="missing field"):
        merge_states([states[0], {"epoch": 0}])
    with pytest.raises(TaliConfigError, match=r"'counts\[0\]' must be an int"):
        merge_states([states[0], {**states[0], "counts": {0: "x"}}])
    import tali

    ds = tali.load(sample_root, split="train", streaming=False, config=TEXT)
    sampler = TaliDistributedSampler(ds, rank=0, world_size=1, seed=3)
    good = sampler.state_dict(consumed=2)
    for bad, message in (
        ({**good, "start": -1}, "'start' is -1"),
        ({**good, "start": 17}, "'start' is 17"),
        ({**good, "epoch": None}, "'epoch' must be an int"),
        ({"start": 1}, "missing field"),
    ):
        with pytest.raises(TaliConfigError, match=message):
            TaliDistributedSampler(ds, rank=0, world_size=1, seed=3).load_state_dict(bad)


_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=16),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.one_of(st.integers(-3, 40), st.text(max_size=2)), st.integers(-3, 40), max_size=3),
)
_FIELDS = ["version", "epoch", "plan", "world_size", "num_workers", "base", "counts", "next_worker", "extra"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.sampled_from([0, 1]),
    edits=st.lists(st.tuples(st.sampled_from(_FIELDS), st.one_of(st.just("<delete>"), _JUNK)), max_size=3),
    flip=st.one_of(st.none(), st.integers(0, 200)),
)
def test_fuzzed_states_load_typed_or_resume_cleanly(train_files, states, which, edits, flip):
    state = copy.deepcopy(states[which])
    for field, value in edits:
        if value == "<delete>":
            state.pop(field, None)
        else:
            state[field] = value
    if flip is not None and isinstance(state.get("base"), bytes) and state["base"]:
        blob = bytearray(state["base"])
        blob[flip % len(blob)] ^= 0x5A
        state["base"] = bytes(blob)
    stream = _stream(train_files)
    try:
        stream.load_state_dict(state)
    except TaliConfigError:
        return
    delivered = [s["key"] for s in stream]  # a state that loads must resume without crashing
    assert len(delivered) == len(set(delivered)) <= ROWS
