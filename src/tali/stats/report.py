"""What ``tali stats`` found, as plain data: JSON-ready dataclasses and a rich rendering."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CategoricalSummary", "Histogram", "NumericSummary", "StatsReport", "html_table"]


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

    def numeric_rows(self) -> list[dict[str, Any]]:
        """One dict per numeric column (the table every form below shows). ``count + nulls
        + nonfinite`` is the number of values: the rows, for a per-row column."""
        return [
            {
                "column": s.name,
                "group": s.group,
                "per": s.per,
                "unit": s.unit,
                "count": s.count,
                "nulls": s.nulls,
                "nonfinite": s.nonfinite,
                "mean": s.mean,
                "std": s.std,
                "min": s.min,
                **{q: s.quantiles.get(q) for q in ("p5", "p50", "p95")},
                "max": s.max,
            }
            for s in self.numeric.values()
        ]

    def to_table(self) -> Any:
        """The numeric columns as a ``pyarrow.Table`` (one row per column)."""
        import pyarrow as pa

        return pa.Table.from_pylist(self.numeric_rows())

    def to_frame(self) -> Any:
        """The numeric columns as a pandas ``DataFrame`` indexed by column name (needs pandas)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            from tali.errors import TaliConfigError

            raise TaliConfigError("StatsReport.to_frame needs pandas: pip install pandas") from None
        return self.to_table().to_pandas().set_index("column")

    def numeric_html(self) -> str:
        """The numeric table as HTML (``report.html`` and notebooks)."""
        headers = [
            "column",
            "per",
            "unit",
            "count",
            "nulls",
            "non-finite",
            "mean",
            "std",
            "min",
            "p5",
            "p50",
            "p95",
            "max",
        ]
        rows = [
            [r["column"], r["per"], r["unit"], r["count"], r["nulls"], r["nonfinite"]]
            + [_fmt(r[k]) for k in ("mean", "std", "min", "p5", "p50", "p95", "max")]
            for r in self.numeric_rows()
        ]
        return html_table(headers, rows)

    def _repr_html_(self) -> str:
        """What a notebook shows: the overview, every numeric column (nothing truncated), the
        categories and the strongest correlations, as HTML tables."""
        import html

        parts = [
            f"<p><b>{html.escape(self._where())}</b>: {html.escape(self._overview())}</p>",
            self.numeric_html(),
        ]
        for c in self.categorical.values():
            parts.append(f"<p><b>{html.escape(c.name)}</b>: {c.distinct} distinct over {c.total}</p>")
            parts.append(
                html_table(
                    ["value", "count", "share"],
                    [[v, n, f"{100 * n / max(c.total, 1):.1f}%"] for v, n in c.top],
                )
            )
        pairs = self.strongest_correlations()
        if pairs:
            parts.append("<p><b>strongest correlations</b> (Pearson r)</p>")
            parts.append(html_table(["column", "column", "r"], [[a, b, f"{r:+.3f}"] for a, b, r in pairs]))
        return "".join(parts)

    def _where(self) -> str:
        return f"{self.source}" + (f" (split {self.split})" if self.split else "")

    def _overview(self) -> str:
        return (
            f"{self.rows} rows in {self.shards} shards"
            + (f", metrics {self.metrics}" if self.metrics else ", metadata only (give --metrics for more)")
            + f"; {self.seconds:.2f} s"
        )

    def render(self, console: Any = None) -> None:
        """Print the overview, numeric, categorical and top-row tables with ``rich``. Each
        section starts after a blank line with its own heading (piped output stays
        readable); below :data:`WIDE` columns each numeric column takes two lines, so an
        80-column terminal shows every name and number whole."""
        from rich import box
        from rich.console import Console
        from rich.table import Table

        console = console or Console()
        console.print(f"[bold]{self._where()}[/bold]: {self._overview()}")

        def heading(text: str) -> None:
            console.print()
            console.print(f"[bold]{text}[/bold]")

        heading("numeric columns (count + nulls + non-finite = values)")
        if console.width >= WIDE:
            table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            for name in (
                "column",
                "per",
                "unit",
                "count",
                "nulls",
                "inf/nan",
                "mean",
                "p5",
                "p50",
                "p95",
                "max",
            ):
                table.add_column(
                    name, justify="left" if name in ("column", "per", "unit") else "right", no_wrap=True
                )
            for r in self.numeric_rows():
                table.add_row(
                    r["column"],
                    r["per"],
                    r["unit"],
                    str(r["count"]),
                    str(r["nulls"]),
                    str(r["nonfinite"]),
                    *(_fmt(r[k]) for k in ("mean", "p5", "p50", "p95", "max")),
                )
            console.print(table)
        else:
            for group in dict.fromkeys(r["group"] for r in self.numeric_rows()):
                console.print(f"[dim]{group}[/dim]")
                for r in (row for row in self.numeric_rows() if row["group"] == group):
                    console.print(
                        f"  [bold]{r['column']}[/bold] [dim]({r['unit']} per {r['per']})[/dim]",
                        overflow="fold",
                    )
                    cells = [
                        f"{label} {value}"
                        for label, value in (
                            ("n", r["count"]),
                            ("null", r["nulls"]),
                            ("inf/nan", r["nonfinite"]),
                            *((k, _fmt(r[k])) for k in ("mean", "p5", "p50", "p95", "max")),
                        )
                    ]
                    for line in _pack(cells, console.width - 4):  # wrapped between pairs only
                        console.print(f"    {line}", no_wrap=True, overflow="ignore")
        for c in self.categorical.values():
            heading(f"{c.name}: {c.distinct} distinct over {c.total}")
            top = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            top.add_column("value", overflow="fold")
            top.add_column("count", justify="right")
            top.add_column("share", justify="right")
            for value, count in c.top:
                top.add_row(value, str(count), f"{100 * count / max(c.total, 1):.1f}%")
            console.print(top)
        pairs = self.strongest_correlations()
        if pairs:
            heading("strongest correlations (Pearson r)")
            top = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            for name in ("column", "column", "r"):
                top.add_column(name, justify="right" if name == "r" else "left", overflow="fold")
            for a, b, pearson in pairs:
                top.add_row(a, b, f"{pearson:+.3f}")
            console.print(top)
        for column, rows in self.top_rows.items():
            heading(f"highest {column}")
            top = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            for name in ("item_idx", "shard", "value"):
                top.add_column(name, overflow="fold")
            for row in rows:
                top.add_row(str(row["item_idx"]), str(row["shard"]), _fmt(row["value"]))
            console.print(top)


#: Terminal width from which the numeric columns print as one table (below: two lines each).
WIDE = 110


def _pack(items: list[str], width: int) -> list[str]:
    """``items`` joined by two spaces into lines of at most ``width`` (an item never splits)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += "  " + item
        else:
            lines.append(item)
    return lines


def html_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain HTML table, every cell escaped."""
    import html

    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
