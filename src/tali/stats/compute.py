"""``describe()``: distributions of a TALI split, aggregated in DuckDB.

>>> report = describe(root, split="train")                      # metadata only
>>> report = describe(root, split="train", metrics="m.parquet") # + video/audio/sync metrics
>>> report.numeric["youtube_description_chars"].quantiles["p50"]

One projected scan builds the per-row table (see :mod:`tali.stats.sql`); every
summary is then a handful of grouped queries over it: all numeric columns of a
relation in one ``UNPIVOT`` pass for moments and quantiles, one more for their
histograms, one ``corr()`` query for every pair. No value is aggregated in Python.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from tali.data.sources import SourceLike, resolve_local_files
from tali.errors import TaliConfigError, TaliSourceError
from tali.stats.report import CategoricalSummary, Histogram, NumericSummary, StatsReport
from tali.stats.sql import connect, create_features, duckdb_module, quote

__all__ = ["METADATA_NUMERIC", "METRICS_NUMERIC", "StatsOptions", "describe"]

Per = Literal["row", "language entry"]

#: (column, relation, group, unit): metadata-only columns; "entries" is one row per WIT language.
METADATA_NUMERIC: tuple[tuple[str, str, str, str], ...] = (
    ("num_languages", "rows", "text", "languages"),
    ("caption_chars", "entries", "text", "chars"),
    ("wikipedia_title_chars", "entries", "text", "chars"),
    ("wikipedia_context_chars", "entries", "text", "chars"),
    ("youtube_title_chars", "rows", "text", "chars"),
    ("youtube_description_chars", "rows", "text", "chars"),
    ("start_seconds", "rows", "clip", "seconds"),
    ("clip_bytes", "rows", "clip", "bytes"),
    ("subtitle_lines_total", "rows", "subtitles", "lines"),
    ("subtitle_lines_in_clip", "rows", "subtitles", "lines"),
    ("subtitle_lines_per_second", "rows", "subtitles", "lines/s"),
)
#: Metrics-table columns summarised when ``metrics=`` is given (those present in the table).
METRICS_NUMERIC: tuple[tuple[str, str, str], ...] = (
    ("video_duration_seconds", "video", "seconds"),
    ("video_fps", "video", "frames/s"),
    ("video_width", "video", "pixels"),
    ("video_height", "video", "pixels"),
    ("video_frames", "video", "frames"),
    ("frozen_frame_ratio", "video", "ratio"),
    ("black_frame_ratio", "video", "ratio"),
    ("audio_rms_dbfs", "audio", "dBFS"),
    ("audio_silence_ratio", "audio", "ratio"),
    ("audio_clipping_ratio", "audio", "ratio"),
    ("av_start_offset_seconds", "sync", "seconds"),
    ("av_end_offset_seconds", "sync", "seconds"),
    ("av_duration_mismatch_seconds", "sync", "seconds"),
    ("image_width", "image", "pixels"),
    ("image_height", "image", "pixels"),
    ("title_vs_wikipedia_title", "agreement", "cosine"),
    ("title_vs_wikipedia_caption", "agreement", "cosine"),
)
#: (name, relation, SQL expression, group) of the categorical summaries.
_CATEGORICAL: tuple[tuple[str, str, str, str], ...] = (
    ("language", "entries", "language", "text"),
    ("languages_per_row", "rows", "num_languages::VARCHAR", "text"),
    ("language_set", "rows", "array_to_string(list_sort(languages), '+')", "text"),
    (
        "subtitles",
        "rows",
        "CASE WHEN subtitles_null THEN 'null' WHEN subtitle_lines_total = 0 THEN 'no lines' ELSE 'lines' END",
        "subtitles",
    ),
    (
        "start_time",
        "rows",
        (
            "CASE WHEN bad_start THEN 'unparsable' WHEN start_seconds IS NULL THEN 'null' "
            "WHEN start_seconds = 0 THEN 'zero' ELSE 'positive' END"
        ),
        "clip",
    ),
)
_METRICS_CATEGORICAL: tuple[tuple[str, str, str], ...] = (
    ("resolution", "video_width || 'x' || video_height", "video"),
    ("fps", "round(video_fps, 3)::VARCHAR", "video"),
    (
        "audio",
        (
            "CASE WHEN audio_present THEN audio_sample_rate || ' Hz x' || audio_channels "
            "WHEN NOT audio_present THEN 'no audio stream' END"
        ),
        "audio",
    ),
    ("image_mode", "image_mode", "image"),
    ("caption_language", "caption_language", "text"),
    ("errors", "CASE WHEN len(errors) = 0 THEN 'none' ELSE split_part(errors[1], ':', 2) END", "errors"),
)
#: Columns of the top-k "highest values" tables.
_TOP_ROWS = ("clip_bytes", "youtube_description_chars", "subtitle_lines_total")
_TOP_METRIC_ROWS = (
    "frozen_frame_ratio",
    "black_frame_ratio",
    "audio_silence_ratio",
    "av_start_offset_seconds",
)


@dataclass(frozen=True, kw_only=True)
class StatsOptions:
    """``bins`` per histogram; ``top_k`` values per categorical and top-row table;
    ``clip_seconds``: clip length for "subtitle lines in the clip" when no metrics give
    the measured duration (TALI clips are 30 s); ``threads``: DuckDB threads (None = all cores)."""

    bins: int = 30
    top_k: int = 10
    clip_seconds: float = 30.0
    quantiles: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    threads: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.bins, int) or not 1 <= self.bins <= 1000:
            raise TaliConfigError(f"StatsOptions.bins must be an integer in 1..1000, got {self.bins!r}")
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise TaliConfigError(f"StatsOptions.top_k must be an integer >= 1, got {self.top_k!r}")
        if not (isinstance(self.clip_seconds, int | float) and self.clip_seconds > 0):
            raise TaliConfigError(f"StatsOptions.clip_seconds must be > 0, got {self.clip_seconds!r}")
        if not all(0.0 <= q <= 1.0 for q in self.quantiles):
            raise TaliConfigError(f"StatsOptions.quantiles must lie in [0, 1], got {self.quantiles!r}")


def _qname(q: float) -> str:
    return f"p{100 * q:g}"


def _clean(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _numeric(
    con: Any, relation: str, columns: Sequence[tuple[str, str, str]], per: Per, opts: StatsOptions
) -> dict[str, NumericSummary]:
    """Moments, quantiles and histograms of ``columns`` of ``relation`` in two grouped queries."""
    if not columns:
        return {}
    names = [c for c, _, _ in columns]
    # Non-finite values (-inf dBFS of a silent clip) are counted apart and left out of the moments.
    casts = ", ".join(f'CASE WHEN isfinite("{c}"::DOUBLE) THEN "{c}"::DOUBLE END AS "{c}"' for c in names)
    tallies = ", ".join(
        f'count(*) - count("{c}"), count(*) FILTER (WHERE NOT isfinite("{c}"::DOUBLE))' for c in names
    )
    got = con.execute(f"SELECT {tallies} FROM {relation}").fetchone()
    nulls, nonfinite = got[0::2], got[1::2]
    on = ", ".join(f'"{c}"' for c in names)
    long = f"(UNPIVOT (SELECT {casts} FROM {relation}) ON {on} INTO NAME name VALUE v)"
    qs = "[" + ", ".join(repr(float(q)) for q in opts.quantiles) + "]"
    stats = {
        row[0]: row[1:]
        for row in con.execute(
            f"SELECT name, count(v), avg(v), stddev_samp(v), min(v), max(v), quantile_cont(v, {qs}), "
            f"bool_and(v = round(v)) FROM {long} GROUP BY name"
        ).fetchall()
    }
    # Histogram layout per column: unit bins for small integer ranges, else opts.bins equal bins.
    layout: dict[str, tuple[float, float, int]] = {}
    for name in names:
        if name not in stats:
            continue
        _, lo, hi, integral = stats[name][0], stats[name][3], stats[name][4], stats[name][6]
        if integral and hi - lo + 1 <= opts.bins:
            layout[name] = (lo - 0.5, 1.0, int(hi - lo) + 1)
        else:
            layout[name] = (lo, (hi - lo) / opts.bins if hi > lo else 1.0, opts.bins if hi > lo else 1)
    counts: dict[str, dict[int, int]] = {name: {} for name in layout}
    if layout:
        values = ", ".join(f"({quote(n)}, {lo!r}, {w!r}, {k})" for n, (lo, w, k) in layout.items())
        for name, b, n in con.execute(
            f"SELECT name, least(floor((v - lo) / w)::BIGINT, k - 1) AS b, count(*) FROM {long} "
            f"JOIN (VALUES {values}) AS l(name, lo, w, k) USING (name) GROUP BY ALL"
        ).fetchall():
            counts[name][int(b)] = int(n)
    out = {}
    for (name, group, unit), null_count, odd in zip(columns, nulls, nonfinite, strict=True):
        count, mean, std, lo, hi, quants, _ = stats.get(name, (0, None, None, None, None, None, None))
        if name in layout:
            start, width, k = layout[name]
            hist = Histogram(
                edges=[start + i * width for i in range(k + 1)],
                counts=[counts[name].get(i, 0) for i in range(k)],
            )
        else:
            hist = Histogram(edges=[], counts=[])
        out[name] = NumericSummary(
            name=name,
            group=group,
            unit=unit,
            per=per,
            count=int(count),
            nulls=int(null_count),
            nonfinite=int(odd),
            mean=_clean(mean),
            std=_clean(std),
            min=_clean(lo),
            max=_clean(hi),
            quantiles={_qname(q): float(v) for q, v in zip(opts.quantiles, quants or [], strict=False)},
            histogram=hist,
        )
    return out


def _categorical(con: Any, relation: str, name: str, expr: str, group: str, k: int) -> CategoricalSummary:
    sql = (
        f"SELECT ({expr})::VARCHAR AS v, count(*) AS n FROM {relation} WHERE ({expr}) IS NOT NULL GROUP BY v"
    )
    total, distinct = con.execute(f"SELECT coalesce(sum(n), 0), count(*) FROM ({sql})").fetchone()
    top = con.execute(f"{sql} ORDER BY n DESC, v LIMIT {k}").fetchall()
    return CategoricalSummary(
        name=name, group=group, total=int(total), distinct=int(distinct), top=[(v, int(n)) for v, n in top]
    )


def _top_rows(con: Any, relation: str, column: str, k: int) -> list[dict[str, Any]]:
    rows = con.execute(
        f'SELECT item_idx, shard, "{column}" FROM {relation} WHERE "{column}" IS NOT NULL '
        f'ORDER BY "{column}" DESC, item_idx LIMIT {k}'
    ).fetchall()
    return [{"item_idx": i, "shard": s, "value": _clean(v)} for i, s, v in rows]


def _correlations(con: Any, relation: str, columns: Sequence[str]) -> dict[str, Any]:
    """Pearson r of every pair, in one scan (``corr`` of a constant column is undefined: null)."""
    pairs = [(a, b) for i, a in enumerate(columns) for b in columns[i + 1 :]]
    if not pairs:
        return {}
    finite = ", ".join(f'CASE WHEN isfinite("{c}"::DOUBLE) THEN "{c}"::DOUBLE END AS "{c}"' for c in columns)
    exprs = ", ".join(f'corr("{a}", "{b}")' for a, b in pairs)
    values = con.execute(f"SELECT {exprs} FROM (SELECT {finite} FROM {relation})").fetchone()
    r = {pair: _clean(v) for pair, v in zip(pairs, values, strict=True)}
    # A column with no defined r (all null or constant) only adds a blank row and column.
    kept = [c for c in columns if any(r.get((c, o), r.get((o, c))) is not None for o in columns if o != c)]
    matrix = [[1.0 if a == b else r.get((a, b), r.get((b, a))) for b in kept] for a in kept]
    return {"columns": kept, "matrix": matrix} if kept else {}


def _register_metrics(con: Any, metrics: str | os.PathLike[str] | pa.Table) -> list[str]:
    """The view ``metrics``; returns its column names."""
    if isinstance(metrics, pa.Table):
        con.register("metrics_table", metrics)
        source = "metrics_table"
    else:
        if not Path(metrics).is_file():
            raise TaliSourceError(f"metrics table not found: {metrics} (write one with `tali metrics`)")
        source = f"read_parquet({quote(str(metrics))})"
    try:
        con.execute(f"CREATE TEMP VIEW metrics AS SELECT * FROM {source}")
        names = [d[0] for d in con.execute("SELECT * FROM metrics LIMIT 0").description]
    except duckdb_module().Error as exc:
        raise TaliSourceError(f"cannot read metrics table {metrics}: {str(exc).splitlines()[0]}") from None
    if "item_idx" not in names:
        raise TaliSourceError(
            f"metrics table {metrics} has no item_idx column (is it `tali metrics` output?)"
        )
    return names


def describe(
    source: SourceLike,
    *,
    split: str | None = None,
    metrics: str | os.PathLike[str] | pa.Table | None = None,
    options: StatsOptions | None = None,
) -> StatsReport:
    """Distributions of ``source`` (``split`` of a Hub-layout directory, or parquet files).

    Reads metadata columns only; with ``metrics`` (a ``tali metrics`` table) also its
    video/audio/sync/image columns, joined on ``item_idx``, and their correlations.
    """
    opts = options or StatsOptions()
    shards = resolve_local_files(source, split)
    con = connect(opts.threads)
    try:
        return _describe(con, source, split, shards, metrics, opts)
    finally:
        con.close()


def _describe(
    con: Any,
    source: SourceLike,
    split: str | None,
    shards: list[str],
    metrics: str | os.PathLike[str] | pa.Table | None,
    opts: StatsOptions,
) -> StatsReport:
    began = time.perf_counter()
    metric_names = _register_metrics(con, metrics) if metrics is not None else []
    try:
        create_features(
            con,
            shards,
            clip_seconds=opts.clip_seconds,
            metrics_view="metrics" if "video_duration_seconds" in metric_names else None,
        )
    except duckdb_module().Error as exc:
        raise TaliSourceError(f"cannot read the shards of {source}: {str(exc).splitlines()[0]}") from None
    con.execute(
        "CREATE TEMP VIEW entries AS SELECT item_idx, shard, unnest(languages) AS language, "
        "unnest(caption_chars) AS caption_chars, unnest(wikipedia_title_chars) AS wikipedia_title_chars, "
        "unnest(wikipedia_context_chars) AS wikipedia_context_chars FROM features"
    )
    relations = {"rows": "row_features", "entries": "entries"}
    report = StatsReport(
        source=str(source),
        split=split,
        shards=len(shards),
        rows=0,
        metrics=None,
        seconds=0.0,
        clip_seconds=float(opts.clip_seconds),
    )
    report.rows = int(con.execute("SELECT count(*) FROM features").fetchone()[0])
    per: dict[str, Per] = {"rows": "row", "entries": "language entry"}
    for rel in ("rows", "entries"):
        cols = [(c, g, u) for c, r, g, u in METADATA_NUMERIC if r == rel]
        report.numeric.update(_numeric(con, relations[rel], cols, per[rel], opts))
    for name, rel, expr, group in _CATEGORICAL:
        report.categorical[name] = _categorical(con, relations[rel], name, expr, group, opts.top_k)
    report.subtitles_by_second = _subtitle_profile(con)
    report.top_rows = {c: _top_rows(con, "row_features", c, opts.top_k) for c in _TOP_ROWS}
    if metrics is not None:
        report.metrics = "<table>" if isinstance(metrics, pa.Table) else str(metrics)
        present = [m for m in METRICS_NUMERIC if m[0] in metric_names]
        # Only this split's rows (the metrics table may cover more), named by the shard they are in.
        drop = [c for c in ("shard", "row") if c in metric_names]
        exclude = f"EXCLUDE ({', '.join(drop)})" if drop else ""
        con.execute(
            f"CREATE TEMP VIEW split_metrics AS SELECT m.* {exclude}, f.shard FROM metrics m "
            "JOIN (SELECT item_idx, shard FROM features) f USING (item_idx)"
        )
        report.numeric.update(_numeric(con, "split_metrics", present, "row", opts))
        for name, expr, group in _METRICS_CATEGORICAL:
            try:
                report.categorical[name] = _categorical(con, "split_metrics", name, expr, group, opts.top_k)
            except duckdb_module().BinderException:
                continue  # a metrics table without this column
        for column in _TOP_METRIC_ROWS:
            if column in metric_names:
                report.top_rows[column] = _top_rows(con, "split_metrics", column, opts.top_k)
        wanted = ["clip_bytes", "subtitle_lines_in_clip", "youtube_description_chars"]
        measured = [c for c, _, _ in present]
        picked = ", ".join([f"f.{c}" for c in wanted] + [f'm."{c}"' for c in measured])
        con.execute(
            f"CREATE TEMP VIEW corr_rows AS SELECT {picked} FROM row_features f "
            "JOIN split_metrics m USING (item_idx)"
        )
        report.correlations = _correlations(con, "corr_rows", wanted + measured)
    report.seconds = time.perf_counter() - began
    return report


def _subtitle_profile(con: Any) -> dict[str, Any]:
    """Mean lines at each clip second over rows whose subtitles and start time parse."""
    (rows,) = con.execute(
        "SELECT count(*) FROM features WHERE NOT subtitles_null AND start_seconds IS NOT NULL"
    ).fetchone()
    counts = dict(
        con.execute(
            "SELECT s, count(*) FROM (SELECT unnest(subtitle_clip_seconds) AS s FROM features) GROUP BY s"
        ).fetchall()
    )
    width = int(max(counts, default=-1)) + 1
    return {
        "rows": int(rows),
        "seconds": list(range(width)),
        "lines": [int(counts.get(s, 0)) for s in range(width)],
        "mean_lines": [counts.get(s, 0) / rows if rows else 0.0 for s in range(width)],
    }
