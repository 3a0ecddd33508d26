"""`tali stats` output for people: 80-column terminals, piped output, notebooks, the HTML
table's counts, and plots that label their axes and do not clip or overlap."""

from __future__ import annotations

import io
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from tali.stats import describe, plot_report, write_html
from tali.stats.report import StatsReport


@pytest.fixture(scope="module")
def report(sample_root: Path, val_metrics: Path, tmp_path_factory: pytest.TempPathFactory) -> StatsReport:
    """The val split with its metrics, one dBFS made -inf (digital silence) and one null."""
    table = pq.read_table(val_metrics)
    column = table.column("audio_rms_dbfs").to_pylist()
    column[0], column[1] = -math.inf, None
    k = table.schema.get_field_index("audio_rms_dbfs")
    table = table.set_column(k, table.schema.field(k), pa.array(column, pa.float64()))
    path = tmp_path_factory.mktemp("stats-out") / "metrics.parquet"
    pq.write_table(table, path)
    return describe(sample_root, split="val", metrics=path)


@pytest.fixture(scope="module")
def val_metrics(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tali.quality.metrics import MetricsOptions, compute_metrics

    out = tmp_path_factory.mktemp("stats-out-metrics") / "val.parquet"
    compute_metrics(sample_root, split="val", out=out, workers=1, options=MetricsOptions(similarity=False))
    return out


def _render(report: StatsReport, width: int) -> str:
    buffer = io.StringIO()
    report.render(Console(file=buffer, width=width, force_terminal=False, color_system=None))
    return buffer.getvalue()


def test_stats_reads_whole_at_80_columns_and_piped(report: StatsReport) -> None:
    text = _render(report, 80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text  # nothing truncated
    words = set(re.findall(r"[\w/.+-]+", text))
    for summary in report.numeric.values():
        assert summary.name in words, summary.name  # every name whole, on one line
    dbfs = text[text.index("audio_rms_dbfs") :].splitlines()[1]
    assert "n 2" in dbfs and "null 1" in dbfs and "inf/nan 1" in dbfs
    # Piped (no TTY): each section has a blank line and its own heading before it.
    for heading in ("numeric columns", "language:", "strongest correlations"):
        at = next(i for i, line in enumerate(lines) if line.startswith(heading))
        assert lines[at - 1] == "", heading
    wide = _render(report, 160)
    assert max(len(line) for line in wide.splitlines()) <= 160 and "inf/nan" in wide


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None


def _numeric_table(html: str) -> list[dict[str, str]]:
    parser = _Tables()
    parser.feed(html)
    header, *rows = parser.tables[0]
    return [dict(zip(header, row)) for row in rows]


def test_html_and_notebook_tables_count_every_value(report: StatsReport, tmp_path: Path) -> None:
    page = write_html(report, tmp_path / "report.html", pngs={}).read_text()
    for html in (page[page.index("<table>") :], report._repr_html_()):
        rows = _numeric_table(html)
        assert {r["column"] for r in rows} == set(report.numeric)
        for r in rows:
            if r["per"] == "row":  # count + nulls + non-finite = rows
                assert int(r["count"]) + int(r["nulls"]) + int(r["non-finite"]) == report.rows, r
        dbfs = next(r for r in rows if r["column"] == "audio_rms_dbfs")
        assert (dbfs["count"], dbfs["nulls"], dbfs["non-finite"]) == ("2", "1", "1")
    frame = report.to_frame()
    assert list(frame.index) == list(report.numeric)
    assert frame.loc["audio_rms_dbfs", "nonfinite"] == 1 and frame.loc["video_width", "p50"] == 640


def test_plots_label_their_axes_and_keep_titles_and_labels_clear(report: StatsReport) -> None:
    figures = plot_report(report)
    for name in ("video", "audio", "text"):
        figure = figures[name]
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        suptitle = figure._suptitle.get_window_extent(renderer)
        for ax in figure.axes:
            if not ax.get_visible():
                continue
            assert ax.get_ylabel() in ("rows", "language entries"), (name, ax.get_title())
            legend = ax.get_legend()
            assert legend is not None and any(t.get_text().startswith("median") for t in legend.get_texts())
            assert not suptitle.overlaps(ax.title.get_window_extent(renderer)), (name, ax.get_title())
    heatmap = figures["correlations"]
    heatmap.canvas.draw()
    renderer = heatmap.canvas.get_renderer()
    box = heatmap.bbox
    ax = heatmap.axes[0]
    for label in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        extent = label.get_window_extent(renderer)
        assert extent.x0 >= box.x0 - 1 and extent.y0 >= box.y0 - 1 and extent.x1 <= box.x1 + 1, (
            label.get_text()
        )
    matrix = report.correlations["matrix"]
    values = [t.get_text() for t in ax.texts]
    assert len(values) == sum(v is not None for row in matrix for v in row)
    assert values[0] == "1.00"  # the diagonal: a column with itself


def test_the_metrics_summary_reads_whole_at_80_columns_and_in_notebooks(val_metrics: Path) -> None:
    from tali.quality.metrics import SUMMARY_RULES, summarize_metrics

    table = pq.read_table(val_metrics)
    summary = summarize_metrics(table, out="m.parquet")
    buffer = io.StringIO()
    summary.render(Console(file=buffer, width=80, force_terminal=False, color_system=None))
    text = buffer.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    for name, rule in SUMMARY_RULES:
        measured = table.num_rows - table.column(name).null_count
        assert re.search(rf"^{name}  measured {measured}\b", text, re.MULTILINE), name
        if rule:
            assert f"rule: {rule}" in text  # whole, as `tali filter --where` takes it
    html = summary._repr_html_()
    assert html.count("<tr>") == len(SUMMARY_RULES) + 1 and "frozen_frame_ratio &gt; 0.1" in html
    frame = summary.to_frame()
    assert frame.loc["video_duration_seconds", "mean"] == pytest.approx(30.0)


def test_a_validation_report_in_a_notebook(sample_root: Path, tmp_path: Path) -> None:
    from tali.quality import validate

    table = pq.read_table(sample_root / "data" / "val-00000-of-00001.parquet")
    k = table.schema.get_field_index("youtube_subtitle_text")
    table = table.set_column(k, table.schema.field(k), pa.array(["0.5: [unclosed"] * table.num_rows))
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "val-00000-of-00001.parquet")
    report = validate(tmp_path, split="val", checks=["subtitles"])
    html = report._repr_html_()
    assert f"{table.num_rows} rows failed" in html and html.count("TaliSubtitleError") >= table.num_rows
    frame = report.to_frame()
    assert len(frame) == table.num_rows and set(frame["check"]) == {"subtitles"}
