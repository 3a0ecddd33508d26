"""Checking a loader's saved state before trusting it.

A ``state_dict`` comes back from disk: it may be from another version,
another dataset, truncated, or hand-edited. Every field is checked at load
time and a bad one raises :class:`~tali.errors.TaliConfigError` naming it,
instead of an untyped ``KeyError``/``zlib.error`` now or a worker crash (or
24 silently dropped rows) later.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from tali.errors import TaliConfigError

__all__ = ["check_int", "check_mapping", "pack_mask", "unpack_mask"]


def check_mapping(state: Any, required: tuple[str, ...], *, what: str) -> Mapping[str, Any]:
    if not isinstance(state, Mapping):
        raise TaliConfigError(f"{what} state must be a dict, got {type(state).__name__}")
    missing = [k for k in required if k not in state]
    if missing:
        raise TaliConfigError(f"{what} state is missing field(s) {missing}; was it saved by another loader?")
    return state


def check_int(value: Any, field: str, *, low: int = 0, high: int | None = None, what: str = "stream") -> int:
    """An int (not a bool) in ``[low, high]``; anything else names ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TaliConfigError(f"{what} state field {field!r} must be an int, got {value!r:.80}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise TaliConfigError(f"{what} state field {field!r} is {value}, outside {bound}")
    return value


def pack_mask(mask: np.ndarray | None) -> bytes | None:
    return None if mask is None else zlib.compress(np.packbits(mask).tobytes())


def unpack_mask(blob: Any, n: int, *, field: str = "base") -> np.ndarray | None:
    """The boolean mask of ``n`` rows packed by :func:`pack_mask`; its length must be exact."""
    if blob is None:
        return None
    if not isinstance(blob, bytes | bytearray):
        raise TaliConfigError(
            f"stream state field {field!r} must be bytes or None, got {type(blob).__name__}"
        )
    expected = (n + 7) // 8
    inflater = zlib.decompressobj()
    try:
        # Never inflate more than the mask can be: a crafted blob cannot exhaust memory.
        raw = inflater.decompress(bytes(blob), expected + 1)
    except zlib.error as exc:
        raise TaliConfigError(f"stream state field {field!r} is corrupt: {exc}") from None
    if len(raw) != expected or inflater.unconsumed_tail or not inflater.eof:
        raise TaliConfigError(
            f"stream state field {field!r} covers {len(raw) * 8}{'+' if inflater.unconsumed_tail else ''} "
            f"rows' bits, this split has {n} rows (expected {expected} bytes)"
        )
    mask = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=n).astype(bool)
    if n % 8 and np.unpackbits(np.frombuffer(raw[-1:], dtype=np.uint8))[n % 8 :].any():
        raise TaliConfigError(f"stream state field {field!r} marks rows past the end of the split")
    return mask
