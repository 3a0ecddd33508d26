"""What ``tali stats`` found, as plain data: JSON-ready dataclasses and a rich rendering."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CategoricalSummary", "Histogram", "NumericSummary", "StatsReport"]


@dataclass(frozen=True, kw_only=True)
class Histogram:
    """``counts[i]`` values fall in ``[edges[i], edges[i + 1])`` (the last bin is closed)."""

    edges: list[float]
    counts: list[int]


@dataclass(frozen=True, kw_only=True)
class NumericSummary:
    """One numeric column: counts, moments, quantiles (``"p50"`` -> value) and a histogram."""

    name: str
    group: str  # "text", "clip", "subtitles", "video", "audio", "sync", "image", "agreement"
    unit: str  # "chars", "seconds", "bytes", "lines", "ratio", "dBFS", ...
    per: str  # what one value describes: "row" or "language entry"
    count: int  # finite values
    nulls: int
    nonfinite: int  # +-inf or NaN (e.g. -inf dBFS of digital silence), left out of every statistic
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    quantiles: dict[str, float]
    histogram: Histogram


@dataclass(frozen=True, kw_only=True)
class CategoricalSummary:
    """One categorical column: the ``top`` values with their counts, most frequent first."""

    name: str
    group: str
    total: int
    distinct: int
    top: list[tuple[str, int]]


@dataclass(kw_only=True)
class StatsReport:
    """Distributions of one split (or source). ``to_dict()`` is the JSON ``tali stats`` writes."""

    source: str
    split: str | None
    shards: int
    rows: int
    metrics: str | None
    seconds: float
    clip_seconds: float
    numeric: dict[str, NumericSummary] = field(default_factory=dict)
    categorical: dict[str, CategoricalSummary] = field(default_factory=dict)
    #: Mean subtitle lines at each whole clip second, over rows whose subtitles and start parse.
    subtitles_by_second: dict[str, Any] = field(default_factory=dict)
    #: column -> the rows with the highest values: ``[{"item_idx", "shard", "value"}, ...]``.
    top_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: ``{"columns": [...], "matrix": [[r, ...], ...]}`` (Pearson; null where undefined); empty without metrics.
    correlations: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.inf

    def strongest_correlations(self, k: int = 10) -> list[tuple[str, str, float]]:
        """The ``k`` column pairs with the largest ``|r|``, strongest first."""
        names, matrix = self.correlations.get("columns", []), self.correlations.get("matrix", [])
        pairs = [
            (a, names[j], matrix[i][j])
            for i, a in enumerate(names)
            for j in range(i + 1, len(names))
            if matrix[i][j] is not None
        ]
        return sorted(pairs, key=lambda p: (-abs(p[2]), p[0], p[1]))[:k]

    def to_dict(self) -> dict[str, Any]:
        blob = asdict(self)
        for summary in blob["categorical"].values():
            summary["top"] = [list(item) for item in summary["top"]]
        return blob

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int | None = 2) -> str:
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=_json_default)
        if path is not None:
            from tali.atomic import write_text

            write_text(path, text + "\n")
        return text

    def render(self, console: Any = None) -> None:
        """Print the overview, numeric, categorical and top-row tables with ``rich``."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        where = f"{self.source}" + (f" (split {self.split})" if self.split else "")
        console.print(
            f"[bold]{where}[/bold]: {self.rows} rows in {self.shards} shards"
            + (f", metrics {self.metrics}" if self.metrics else ", metadata only (give --metrics for more)")
            + f"; {self.seconds:.2f} s"
        )
        table = Table(title="numeric columns")
        for name in ("column", "per", "unit", "count", "nulls", "mean", "p5", "p50", "p95", "max"):
            table.add_column(
                name,
                justify="left" if name in ("column", "per", "unit") else "right",
                no_wrap=name == "column",
            )
        for s in self.numeric.values():
            q = s.quantiles
            table.add_row(
                s.name,
                s.per,
                s.unit,
                str(s.count),
                str(s.nulls),
                _fmt(s.mean),
                _fmt(q.get("p5")),
                _fmt(q.get("p50")),
                _fmt(q.get("p95")),
                _fmt(s.max),
            )
        console.print(table)
        for c in self.categorical.values():
            top = Table(title=f"{c.name}: {c.distinct} distinct over {c.total}")
            top.add_column("value")
            top.add_column("count", justify="right")
            top.add_column("share", justify="right")
            for value, count in c.top:
                top.add_row(value, str(count), f"{100 * count / max(c.total, 1):.1f}%")
            console.print(top)
        pairs = self.strongest_correlations()
        if pairs:
            top = Table(title="strongest correlations (Pearson r)")
            for name in ("column", "column", "r"):
                top.add_column(name, justify="right" if name == "r" else "left")
            for a, b, r in pairs:
                top.add_row(a, b, f"{r:+.3f}")
            console.print(top)
        for column, rows in self.top_rows.items():
            top = Table(title=f"highest {column}")
            for name in ("item_idx", "shard", "value"):
                top.add_column(name)
            for row in rows:
                top.add_row(str(row["item_idx"]), str(row["shard"]), _fmt(row["value"]))
            console.print(top)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
