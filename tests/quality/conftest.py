"""Shared fixtures for the data-quality tests: the ground-truth sample dataset and
its metrics table, computed once per session (the slow part: every clip decoded)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tali.quality.metrics import MetricsOptions, compute_metrics


@pytest.fixture(scope="session")
def metrics_path(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Metrics of all 24 rows (every split), with similarity, over 2 worker processes."""
    out = tmp_path_factory.mktemp("metrics") / "metrics.parquet"
    compute_metrics(sample_root, split=None, out=out, workers=2, options=MetricsOptions(similarity=True))
    return out


@pytest.fixture(scope="session")
def metrics_rows(metrics_path: Path) -> dict[int, dict]:
    import pyarrow.parquet as pq

    table: pa.Table = pq.read_table(metrics_path)
    return {r["item_idx"]: r for r in table.to_pylist()}
