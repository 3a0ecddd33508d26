"""Shared fixtures: the ground-truth sample dataset, built once per machine and reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tali import sample_data


@pytest.fixture(scope="session")
def sample_root() -> Path:
    """The sample dataset (cached under $TALI_CACHE_DIR or ~/.cache/tali; a lock serialises builders)."""
    return sample_data.build()


@pytest.fixture(scope="session")
def truth(sample_root: Path) -> dict[int, dict[str, Any]]:
    return sample_data.load_truth(sample_root)


@pytest.fixture(scope="session")
def rows(sample_root: Path) -> dict[int, dict[str, Any]]:
    """Every row of the train, val and test splits as Python values, keyed by item_idx
    (the ``realworld`` split's clips have their own fixture, ``real_rows``)."""
    out: dict[int, dict[str, Any]] = {}
    for path in sorted((sample_root / "data").glob("*.parquet")):
        if path.name.startswith("realworld-"):
            continue
        for row in pq.read_table(path).to_pylist():
            out[row["item_idx"]] = row
    return out


@pytest.fixture(scope="session")
def real_rows(sample_root: Path) -> dict[int, dict[str, Any]]:
    """The ``realworld`` split (one row per ``sample_data.REALWORLD_VARIANTS`` clip), by item_idx."""
    out: dict[int, dict[str, Any]] = {}
    for path in sorted((sample_root / "data").glob("realworld-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            out[row["item_idx"]] = row
    return out
