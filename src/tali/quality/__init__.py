"""Data quality: validate rows, measure them, and filter on what was measured.

- :func:`validate` — every row against the schema, decoding what each part needs;
- :func:`compute_metrics` — per-row video/audio/sync/text/agreement metrics as parquet;
- :func:`select` — DuckDB SQL or Python predicates over metadata + metrics, giving an
  index for ``TaliDataset(item_ids=...)`` or new shards in the TALI layout.
"""

from tali.quality.checks import CheckLimits
from tali.quality.filter import FilterResult, WriteSummary, load_index, select
from tali.quality.metrics import METRICS_SCHEMA, MetricsOptions, compute_metrics, row_metrics
from tali.quality.scan import ScanThresholds
from tali.quality.validate import ALL_CHECKS, Failure, ValidationReport, validate

__all__ = [
    "ALL_CHECKS",
    "METRICS_SCHEMA",
    "CheckLimits",
    "Failure",
    "FilterResult",
    "MetricsOptions",
    "ScanThresholds",
    "ValidationReport",
    "WriteSummary",
    "compute_metrics",
    "load_index",
    "row_metrics",
    "select",
    "validate",
]
