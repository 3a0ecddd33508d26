"""The one range check every augmentation config uses for its ``(low, high)`` fields."""

from __future__ import annotations

from typing import Any

from tali.errors import TaliConfigError


def check_range(owner: str, name: str, value: Any, lo: float, hi: float) -> None:
    """``value`` must be a pair of numbers with ``lo <= low <= high <= hi``."""
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        or not lo <= value[0] <= value[1] <= hi
    ):
        raise TaliConfigError(
            f"{owner}.{name} must be (low, high) with {lo} <= low <= high <= {hi}, got {value!r}"
        )
