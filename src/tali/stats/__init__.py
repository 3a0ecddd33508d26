"""``tali stats``: distributions of a split from metadata (+ a metrics table), in DuckDB.

>>> report = tali.stats.describe(root, split="train")
>>> report.render()                       # rich tables
>>> tali.stats.write_outputs(report, "stats/", html=True)   # stats.json, PNG plots, report.html

See docs/STATS.md.
"""

from tali.stats.compute import METADATA_NUMERIC, METRICS_NUMERIC, StatsOptions, describe
from tali.stats.plots import plot_report, write_html, write_outputs
from tali.stats.report import CategoricalSummary, Histogram, NumericSummary, StatsReport

__all__ = [
    "METADATA_NUMERIC",
    "METRICS_NUMERIC",
    "CategoricalSummary",
    "Histogram",
    "NumericSummary",
    "StatsOptions",
    "StatsReport",
    "describe",
    "plot_report",
    "write_html",
    "write_outputs",
]
