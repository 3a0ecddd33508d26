"""The SQL behind ``tali stats``: one projected pass over the shards into a per-row table.

Only metadata columns are named, so DuckDB reads nothing else (never the image or
the video bytes); it scans row groups of every file in parallel. Everything after
that pass runs on the small per-row table ``features`` (tens of bytes per row).

Subtitles are counted lexically, inside DuckDB: a TALI subtitle document is a
block-style YAML mapping ``{<absolute seconds>: text}`` (what ``yaml.safe_dump``
writes), so every key is a number, optionally quoted, at the start of a line,
while wrapped or list-valued text is indented. :data:`SUBTITLE_KEY` matches those
keys; the count equals ``len(parse_subtitles(text))`` on block-style documents
(tests check it on every sample row). Measured need: parsing every document in Python
took 15x as long as this regex on one DuckDB thread (benchmarks/stats/bench_stats.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tali._optional import require
from tali.errors import TaliConfigError
from tali.schema import Column, WitField
from tali.sql.sandbox import sql_string

__all__ = ["SUBTITLE_KEY", "connect", "create_features", "duckdb_module", "features_sql", "quote"]

#: A YAML mapping key that is a number of seconds, at the start of a line (group 1).
SUBTITLE_KEY = r"""(?m)^['"]?([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)['"]?[ \t]*:(?:[ \t]|$)"""

C, W = Column, WitField


def duckdb_module() -> Any:
    return require("duckdb", extra="quality", feature="tali stats")


quote = sql_string


def connect(threads: int | None) -> Any:
    con = duckdb_module().connect(":memory:")
    if threads is not None:
        if threads < 1:
            raise TaliConfigError(f"threads must be >= 1, got {threads}")
        con.execute(f"SET threads = {int(threads)}")
    return con


def _wit(field: WitField) -> str:
    return f'"{C.WIT_FEATURES}"."{field}"'


def _first_nonempty(*fields: WitField) -> str:
    """Per language ``k``: the first non-empty of ``fields[k]``, as ``tali.text.caption`` picks."""
    head, *rest = fields
    parts = ["nullif(x, '')"] + [f"nullif({_wit(f)}[i], '')" for f in rest]
    return f"list_transform({_wit(head)}, lambda x, i: length(coalesce({', '.join(parts)}, '')))"


def features_sql(shards: Sequence[str], *, clip_seconds: float, metrics_view: str | None) -> str:
    """The SELECT behind ``features``: one row per dataset row, scalars and short lists.

    ``clip_seconds`` is the clip length used for "subtitle lines inside the clip"
    when no metrics table gives the measured ``video_duration_seconds``.
    """
    files = "[" + ", ".join(quote(s) for s in shards) + "]"
    start = f'TRY_CAST("{C.YOUTUBE_VIDEO_STARTING_TIME}" AS DOUBLE)'
    subs = f'"{C.YOUTUBE_SUBTITLE_TEXT}"'
    raw = f"""
        SELECT
            "{C.ITEM_IDX}" AS item_idx,
            parse_filename(filename) AS shard,
            {_wit(W.LANGUAGE)} AS languages,
            len({_wit(W.LANGUAGE)}) AS num_languages,
            {
        _first_nonempty(
            W.CAPTION_REFERENCE_DESCRIPTION,
            W.CAPTION_TITLE_AND_REFERENCE_DESCRIPTION,
            W.CAPTION_ALT_TEXT_DESCRIPTION,
        )
    } AS caption_chars,
            list_transform({_wit(W.PAGE_TITLE)}, lambda x: length(coalesce(x, ''))) AS wikipedia_title_chars,
            list_transform({_wit(W.CONTEXT_PAGE_DESCRIPTION)}, lambda x: length(coalesce(x, '')))
                AS wikipedia_context_chars,
            length("{C.YOUTUBE_TITLE_TEXT}") AS youtube_title_chars,
            length("{C.YOUTUBE_DESCRIPTION_TEXT}") AS youtube_description_chars,
            "{C.YOUTUBE_VIDEO_STARTING_TIME}" IS NOT NULL AND ({start} IS NULL OR NOT isfinite({start})
                OR {start} < 0) AS bad_start,
            CASE WHEN isfinite({start}) AND {start} >= 0 THEN {start} END AS start_seconds,
            "{C.YOUTUBE_VIDEO_SIZE}" AS clip_bytes,
            {subs} IS NULL AS subtitles_null,
            list_transform(regexp_extract_all(coalesce({subs}, ''), {quote(SUBTITLE_KEY)}, 1),
                           lambda x: TRY_CAST(x AS DOUBLE)) AS subtitle_times
        FROM read_parquet({files}, filename = true)
    """
    clip = f"{float(clip_seconds)!r}"
    join = ""
    if metrics_view is not None:
        clip = f"coalesce(m.video_duration_seconds, {clip})"
        join = f"LEFT JOIN (SELECT item_idx, video_duration_seconds FROM {metrics_view}) m USING (item_idx)"
    # Lines inside the clip: absolute time in [start, start + clip], as tali.transform cuts them;
    # kept as whole clip seconds (SMALLINT) for the per-second profile.
    return f"""
        SELECT r.* EXCLUDE (subtitle_times),
            CASE WHEN subtitles_null THEN NULL ELSE len(subtitle_times) END AS subtitle_lines_total,
            {clip} AS clip_seconds_used,
            list_transform(
                list_filter(subtitle_times, lambda t: t - start_seconds BETWEEN 0 AND {clip}),
                lambda t: least(floor(t - start_seconds), greatest(ceil({clip}) - 1, 0))::SMALLINT) AS subtitle_clip_seconds
        FROM ({raw}) r {join}
    """


def create_features(
    con: Any, shards: Sequence[str], *, clip_seconds: float, metrics_view: str | None
) -> None:
    """``features`` (a temp table from one scan) and the view ``row_features`` over it."""
    con.execute(
        "CREATE TEMP TABLE features AS "
        + features_sql(shards, clip_seconds=clip_seconds, metrics_view=metrics_view)
    )
    con.execute(
        """
        CREATE TEMP VIEW row_features AS
        SELECT *,
            CASE WHEN subtitles_null OR start_seconds IS NULL THEN NULL ELSE len(subtitle_clip_seconds) END
                AS subtitle_lines_in_clip,
            CASE WHEN subtitles_null OR start_seconds IS NULL THEN NULL
                 ELSE len(subtitle_clip_seconds) / nullif(clip_seconds_used, 0) END AS subtitle_lines_per_second
        FROM features
        """
    )
