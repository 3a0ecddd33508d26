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
    """Every row of every split as Python values, keyed by item_idx."""
    out: dict[int, dict[str, Any]] = {}
    for path in sorted((sample_root / "data").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            out[row["item_idx"]] = row
    return out
