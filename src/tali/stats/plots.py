"""Plots of a :class:`~tali.stats.report.StatsReport`: PNG files and one self-contained HTML page.

Figures are built on ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state),
so they render without a display and in worker processes.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from tali.atomic import write_bytes as atomic_write_bytes
from tali.atomic import write_text as atomic_write_text
from tali.errors import TaliConfigError
from tali.stats.report import NumericSummary, StatsReport, html_table
from tali.viz.figure import new_figure, png_bytes

__all__ = ["plot_report", "write_html", "write_outputs"]

_GROUPS = ("text", "clip", "subtitles", "video", "audio", "sync", "image", "agreement")


def _histogram(ax: Any, s: NumericSummary) -> None:
    h = s.histogram
    if h.counts:
        ax.stairs(h.counts, h.edges, fill=True, color="#4c72b0", label=f"{s.count} values")
        if "p50" in s.quantiles:
            ax.axvline(
                s.quantiles["p50"], color="#c44e52", linewidth=1.2, label=f"median {s.quantiles['p50']:.4g}"
            )
        ax.legend(fontsize=6, loc="upper right", frameon=False)
    ax.set_title(f"{s.name} (per {s.per})", fontsize=9)
    ax.set_xlabel(s.unit, fontsize=8)
    ax.set_ylabel("language entries" if s.per == "language entry" else f"{s.per}s", fontsize=8)
    ax.tick_params(labelsize=7)


def _bar(ax: Any, labels: list[str], values: list[float], title: str, ylabel: str) -> None:
    ax.bar(range(len(values)), values, color="#55a868")
    ax.set_xticks(range(len(values)), labels, rotation=45 if len(labels) > 8 else 0, fontsize=7, ha="right")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)


def plot_report(report: StatsReport) -> dict[str, Any]:
    """Figures by file stem: one histogram grid per group, languages, subtitles per clip
    second, and the correlation heatmap (with metrics)."""
    figures: dict[str, Any] = {}
    for group in _GROUPS:
        items = [s for s in report.numeric.values() if s.group == group and s.count]
        if not items:
            continue
        cols = min(3, len(items))
        rows = (len(items) + cols - 1) // cols
        # Constrained layout keeps the suptitle clear of the first row's titles (a fixed
        # subplots_adjust overlapped them on video.png).
        figure = new_figure(4.0 * cols, 2.8 * rows + 0.4)
        axes = figure.subplots(rows, cols, squeeze=False)
        for ax, s in zip(axes.flat, items, strict=False):
            _histogram(ax, s)
        for ax in list(axes.flat)[len(items) :]:
            ax.set_visible(False)
        figure.suptitle(f"{group} ({report.rows} rows)", fontsize=10)
        figures[group] = figure
    language = report.categorical.get("language")
    if language and language.top:
        figure = new_figure(6, 3)
        ax = figure.subplots()
        _bar(
            ax,
            [v for v, _ in language.top],
            [n for _, n in language.top],
            f"languages over all rows (top {len(language.top)} of {language.distinct})",
            "rows",
        )
        figures["languages"] = figure
    profile = report.subtitles_by_second
    if profile.get("seconds"):
        figure = new_figure(7, 3)
        ax = figure.subplots()
        ax.bar(profile["seconds"], profile["mean_lines"], width=0.9, align="edge", color="#8172b2")
        ax.set_xlabel("clip second")
        ax.set_ylabel("mean subtitle lines")
        ax.set_title(f"subtitle lines per clip second ({profile['rows']} rows with subtitles)", fontsize=9)
        figures["subtitles_by_second"] = figure
    corr = report.correlations
    if corr.get("columns"):
        import numpy as np

        names = corr["columns"]
        matrix = np.array([[np.nan if v is None else v for v in row] for row in corr["matrix"]], dtype=float)
        # Room for the longest label (~0.07 in per character at 7 pt) and r in each cell.
        label = 0.07 * max(len(n) for n in names)
        size = 1.5 + 0.55 * len(names)
        figure = new_figure(size + label + 1.5, size + label)
        ax = figure.subplots()
        image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        for i in range(len(names)):
            for j in range(len(names)):
                if np.isfinite(matrix[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{matrix[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if abs(matrix[i, j]) > 0.6 else "black",
                    )
        figure.colorbar(image, ax=ax, label="Pearson r")
        ax.set_title("correlations between metrics", fontsize=9)
        figures["correlations"] = figure
    return figures


def write_outputs(
    report: StatsReport,
    out_dir: str | os.PathLike[str],
    *,
    html: bool = False,
    figures: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """``stats.json`` and one PNG per figure into ``out_dir`` (+ ``report.html`` with ``html``).
    ``figures``: the output of :func:`plot_report`, if already built."""
    target = Path(out_dir)
    if target.exists() and not target.is_dir():
        raise TaliConfigError(f"output folder {target} exists and is not a directory")
    target.mkdir(parents=True, exist_ok=True)
    written = {"json": target / "stats.json"}
    report.to_json(written["json"])
    pngs = {name: png_bytes(figure) for name, figure in (figures or plot_report(report)).items()}
    for name, data in pngs.items():
        written[name] = target / f"{name}.png"
        atomic_write_bytes(written[name], data)
    if html:
        written["html"] = write_html(report, target / "report.html", pngs=pngs)
    return written


_table = html_table


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def write_html(
    report: StatsReport, path: str | os.PathLike[str], *, pngs: dict[str, bytes] | None = None
) -> Path:
    """One page, no external files: tables plus every plot inlined as a base64 PNG."""
    if pngs is None:
        pngs = {name: png_bytes(figure) for name, figure in plot_report(report).items()}
    title = f"tali stats: {report.source}" + (f" / {report.split}" if report.split else "")
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        (
            f"<p>{report.rows} rows in {report.shards} shards; "
            f"metrics: {html.escape(report.metrics or 'none')}; computed in {report.seconds:.2f} s.</p>"
        ),
        "<h2>Numeric columns</h2>",
        "<p>count + nulls + non-finite = the values of a column (its rows, for a per-row column).</p>",
        report.numeric_html(),
        "<h2>Plots</h2>",
    ]
    for name, data in pngs.items():
        encoded = base64.b64encode(data).decode("ascii")
        parts.append(
            f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{html.escape(name)}</figcaption></figure>"
        )
    parts.append("<h2>Categories</h2>")
    for c in report.categorical.values():
        parts.append(f"<h3>{html.escape(c.name)} ({c.distinct} distinct over {c.total})</h3>")
        parts.append(_table(["value", "count"], [[v, n] for v, n in c.top]))
    parts.append("<h2>Highest values</h2>")
    for column, rows in report.top_rows.items():
        parts.append(f"<h3>{html.escape(column)}</h3>")
        parts.append(
            _table(
                ["item_idx", "shard", "value"], [[r["item_idx"], r["shard"], _num(r["value"])] for r in rows]
            )
        )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
        "font-size:13px;text-align:right}th{background:#f3f3f3}img{max-width:100%}"
    )
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
    )
    target = Path(path)
    atomic_write_text(target, page)
    return target
