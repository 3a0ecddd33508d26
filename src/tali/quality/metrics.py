"""Per-row quality metrics from one decode pass, as a parquet table keyed by ``item_idx``.

>>> table = compute_metrics(root, split="train", out="train-metrics.parquet")

Columns (seconds are on each stream's own timeline; null when not measurable):

- video: ``video_duration_seconds``, ``video_fps``, ``video_width``, ``video_height``,
  ``video_frames``, ``frozen_frame_ratio`` (non-black frames repeating the previous
  one), ``black_frame_ratio``;
- audio: ``audio_present``, ``audio_sample_rate``, ``audio_channels``,
  ``audio_rms_dbfs``, ``audio_silence_ratio``, ``audio_clipping_ratio``;
- sync: ``av_start_offset_seconds`` (audio start minus video start; positive = audio
  late), ``av_end_offset_seconds``, ``av_duration_mismatch_seconds`` (audio minus video);
- text: ``subtitle_lines`` and ``subtitle_chars`` inside the clip
  (``[start, start + video duration]`` absolute seconds), ``subtitle_lines_total``,
  ``languages``, ``num_languages``, ``caption_language``, ``caption_chars``,
  ``wikipedia_title_chars``, ``youtube_title_chars``, ``youtube_description_chars``;
- image: ``image_width``, ``image_height``, ``image_mode`` (from the header only);
- agreement (``similarity=True``): ``title_vs_wikipedia_title``,
  ``title_vs_wikipedia_caption`` — cosine of MiniLM sentence embeddings;
- ``shard``, ``row``, ``errors`` (``"field: ErrorClass: message"`` per failed part).

A bad part of a row nulls only its own columns and is listed in ``errors``.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import InitVar, asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from tali.atomic import exclusive
from tali.atomic import write_parquet as atomic_write_table
from tali.data.rows import row_to_python_lenient
from tali.data.sources import SourceLike, refuse_foreign_shards, resolve_local_files
from tali.decode.clip import open_clip
from tali.decode.image import IMAGE_FORMATS
from tali.decode.subtitles import lines_between, parse_subtitles
from tali.errors import TaliDataError, TaliSourceError
from tali.jobs import parts_dir_of, remove_parts, report_rows, run_shards
from tali.outputs import check_output_apart, source_places
from tali.quality.checks import parse_start_seconds
from tali.quality.scan import ScanThresholds, scan_clip
from tali.quality.similarity import require_embeddings
from tali.schema import Column, ImageField, WitField
from tali.text import caption, read_wit, title

__all__ = [
    "METRICS_COLUMNS",
    "METRICS_SCHEMA",
    "MetricsOptions",
    "compute_metrics",
    "parts_dir_for",
    "row_metrics",
]

_F, _I, _B, _S = pa.float64(), pa.int64(), pa.bool_(), pa.string()
METRICS_SCHEMA = pa.schema(
    [
        ("item_idx", _I),
        ("shard", _S),
        ("row", _I),
        ("video_duration_seconds", _F),
        ("video_fps", _F),
        ("video_width", _I),
        ("video_height", _I),
        ("video_frames", _I),
        ("frozen_frame_ratio", _F),
        ("black_frame_ratio", _F),
        ("audio_present", _B),
        ("audio_sample_rate", _I),
        ("audio_channels", _I),
        ("audio_rms_dbfs", _F),
        ("audio_silence_ratio", _F),
        ("audio_clipping_ratio", _F),
        ("av_start_offset_seconds", _F),
        ("av_end_offset_seconds", _F),
        ("av_duration_mismatch_seconds", _F),
        ("subtitle_lines", _I),
        ("subtitle_chars", _I),
        ("subtitle_lines_total", _I),
        ("languages", pa.list_(_S)),
        ("num_languages", _I),
        ("caption_language", _S),
        ("caption_chars", _I),
        ("wikipedia_title_chars", _I),
        ("youtube_title_chars", _I),
        ("youtube_description_chars", _I),
        ("image_width", _I),
        ("image_height", _I),
        ("image_mode", _S),
        ("title_vs_wikipedia_title", _F),
        ("title_vs_wikipedia_caption", _F),
        ("errors", pa.list_(_S)),
    ]
)
METRICS_COLUMNS: tuple[str, ...] = tuple(METRICS_SCHEMA.names)

#: Columns the metrics read: everything except the file path, URLs and ids.
_READ = [
    Column.ITEM_IDX,
    Column.IMAGE,
    Column.WIT_FEATURES,
    Column.YOUTUBE_TITLE_TEXT,
    Column.YOUTUBE_DESCRIPTION_TEXT,
    Column.YOUTUBE_VIDEO_CONTENT,
    Column.YOUTUBE_VIDEO_STARTING_TIME,
    Column.YOUTUBE_SUBTITLE_TEXT,
]


@dataclass(frozen=True, kw_only=True)
class MetricsOptions:
    thresholds: ScanThresholds = field(default_factory=ScanThresholds)
    #: Caption language: this one when the row has it, else the row's first.
    language: str = "en"
    similarity: bool = False
    #: Wall-clock budget for scanning one clip (was ``max_clip_seconds``).
    max_decode_seconds: float = 60.0
    max_subtitle_bytes: int = 4_000_000
    max_image_pixels: int = 64_000_000
    #: Deprecated keyword for ``max_decode_seconds``, accepted with a ``DeprecationWarning``.
    max_clip_seconds: InitVar[float | None] = None

    def __post_init__(self, max_clip_seconds: float | None) -> None:
        from tali.config import check_language
        from tali.limits import renamed

        renamed(self, "max_clip_seconds", max_clip_seconds, "max_decode_seconds")

        check_language(self.language, owner="MetricsOptions")


def _error(out: dict[str, Any], exc: BaseException, fallback_field: str) -> None:
    where = getattr(exc, "field", None) or fallback_field
    message = getattr(exc, "message", None) or str(exc)
    out["errors"].append(f"{where}: {type(exc).__name__}: {message[:200]}")


def _clip_metrics(
    row: Mapping[str, Any], item_idx: int | None, opts: MetricsOptions, out: dict[str, Any]
) -> None:
    data = row.get(str(Column.YOUTUBE_VIDEO_CONTENT))
    with open_clip(data, item_idx=item_idx, max_seconds=opts.max_decode_seconds) as clip:
        scan = scan_clip(clip, thresholds=opts.thresholds)
    v, a = scan.video, scan.audio
    out.update(
        video_duration_seconds=v.duration_seconds,
        video_fps=v.fps,
        video_width=v.width,
        video_height=v.height,
        video_frames=v.frames,
        frozen_frame_ratio=v.frozen_frames / v.frames,
        black_frame_ratio=v.black_frames / v.frames,
        audio_present=a is not None,
    )
    if a is not None:
        out.update(
            audio_sample_rate=a.sample_rate,
            audio_channels=a.channels,
            audio_rms_dbfs=a.rms_dbfs if math.isfinite(a.rms_dbfs) else -math.inf,
            audio_silence_ratio=a.silence_ratio,
            audio_clipping_ratio=a.clipping_ratio,
            av_start_offset_seconds=a.first_seconds - v.first_seconds,
            av_end_offset_seconds=a.end_seconds - v.end_seconds,
            av_duration_mismatch_seconds=a.duration_seconds - v.duration_seconds,
        )


def _text_metrics(
    row: Mapping[str, Any], item_idx: int | None, opts: MetricsOptions, out: dict[str, Any]
) -> None:
    for column, key in (
        (Column.YOUTUBE_TITLE_TEXT, "youtube_title_chars"),
        (Column.YOUTUBE_DESCRIPTION_TEXT, "youtube_description_chars"),
    ):
        value = row.get(str(column))
        out[key] = len(value) if isinstance(value, str) else 0
    try:
        lines = parse_subtitles(
            row.get(str(Column.YOUTUBE_SUBTITLE_TEXT)), item_idx=item_idx, max_bytes=opts.max_subtitle_bytes
        )
        out["subtitle_lines_total"] = len(lines)
        start = parse_start_seconds(row.get(str(Column.YOUTUBE_VIDEO_STARTING_TIME)), item_idx=item_idx)
        duration = out.get("video_duration_seconds")
        if duration is not None:
            inside = lines_between(lines, start, start + duration)
            out["subtitle_lines"] = len(inside)
            out["subtitle_chars"] = sum(len(line.text) for line in inside)
    except TaliDataError as exc:
        _error(out, exc, str(Column.YOUTUBE_SUBTITLE_TEXT))
    try:
        wit = read_wit(row.get(str(Column.WIT_FEATURES)), item_idx=item_idx)
    except TaliDataError as exc:
        _error(out, exc, str(Column.WIT_FEATURES))
        return
    languages = [str(x) for x in wit[str(WitField.LANGUAGE)]]
    k = languages.index(opts.language) if opts.language in languages else 0
    out.update(
        languages=languages,
        num_languages=len(languages),
        caption_language=languages[k],
        caption_chars=len(caption(wit, k)),
        wikipedia_title_chars=len(title(wit, k)),
    )
    out["_texts"] = (row.get(str(Column.YOUTUBE_TITLE_TEXT)) or "", title(wit, k), caption(wit, k))


def _image_metrics(row: Mapping[str, Any], opts: MetricsOptions, out: dict[str, Any]) -> None:
    value = row.get(str(Column.IMAGE))
    data = value.get(str(ImageField.BYTES)) if isinstance(value, Mapping) else value
    if not data:
        raise TaliDataError("image bytes are empty or null", field=str(Column.IMAGE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # Header only (no pixels decoded), and only the formats a TALI image may be in.
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            out.update(image_width=image.size[0], image_height=image.size[1], image_mode=image.mode)


def row_metrics(row: Mapping[str, Any], *, options: MetricsOptions | None = None) -> dict[str, Any]:
    """Metrics of one row (a dict of its columns); keys follow :data:`METRICS_SCHEMA`.

    Similarity is filled in per batch by :func:`compute_metrics` (the model
    encodes many texts at once); here it stays ``None``.
    """
    opts = options or MetricsOptions()
    out: dict[str, Any] = {name: None for name in METRICS_COLUMNS}
    out["errors"] = []
    item_idx = row.get(str(Column.ITEM_IDX))
    item_idx = item_idx if isinstance(item_idx, int) else None
    out["item_idx"] = item_idx
    parts = (
        (lambda: _clip_metrics(row, item_idx, opts, out), Column.YOUTUBE_VIDEO_CONTENT),
        (lambda: _text_metrics(row, item_idx, opts, out), Column.WIT_FEATURES),  # needs the clip's duration
        (lambda: _image_metrics(row, opts, out), Column.IMAGE),
    )
    for measure, fallback in parts:
        try:
            measure()
        except Exception as exc:  # noqa: BLE001 - a metrics run records a bad part, it never dies on a row
            _error(out, exc, str(fallback))
    return out


def _add_similarity(rows: list[dict[str, Any]]) -> None:
    from tali.quality.similarity import TextEmbedder, cosine_rows

    embedder = TextEmbedder()
    texts = [r.get("_texts") or ("", "", "") for r in rows]
    yt, wt, wc = (embedder.encode([t[i] for t in texts]) for i in range(3))
    for r, s_title, s_caption in zip(rows, cosine_rows(yt, wt), cosine_rows(yt, wc)):
        r["title_vs_wikipedia_title"], r["title_vs_wikipedia_caption"] = s_title, s_caption


def _open(shard: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(shard)
    except (OSError, pa.ArrowException) as exc:
        raise TaliSourceError(
            f"cannot read parquet shard {shard} (run `tali validate` first): {exc}"
        ) from exc


@dataclass(frozen=True)
class _MetricsShard:
    options: MetricsOptions

    def __call__(self, shard: str, part: Path) -> None:
        name = Path(shard).name
        handle = _open(shard)
        columns = [str(c) for c in _READ if str(c) in handle.schema_arrow.names]
        rows: list[dict[str, Any]] = []
        index = 0
        for group in range(handle.num_row_groups):
            table = handle.read_row_group(group, columns=columns)
            for offset in range(table.num_rows):
                values, unreadable = row_to_python_lenient(table, offset)
                metrics = row_metrics(values, options=self.options)
                for exc in unreadable:
                    _error(metrics, exc, exc.field or "row")
                metrics.update(shard=name, row=index)
                rows.append(metrics)
                index += 1
            report_rows(table.num_rows)
        if self.options.similarity and rows:
            _add_similarity(rows)
        for r in rows:
            r.pop("_texts", None)
        atomic_write_table(part, pa.Table.from_pylist(rows, schema=METRICS_SCHEMA))


def parts_dir_for(out: str | Path, options: MetricsOptions) -> Path:
    """Where a run writing ``out`` keeps per-shard parts (keyed by the options)."""
    return parts_dir_of(out, asdict(options))


def compute_metrics(
    source: SourceLike,
    *,
    split: str | None = None,
    out: str | Path | None = None,
    options: MetricsOptions | None = None,
    workers: int = 1,
    progress: bool = False,
    ray: str | bool | None = None,
) -> pa.Table:
    """Metrics of every row of ``source``; written to ``out`` (parquet) when given.

    Like :func:`~tali.quality.validate.validate`, per-shard parts are kept in
    ``<out>.parts/`` until the run finishes, so an interrupted run resumes.
    """
    opts = options or MetricsOptions()
    if opts.similarity:
        require_embeddings()  # before the decode pass, not after it
    shards = resolve_local_files(source, split)
    if out is not None:
        check_output_apart(out, source_places(source, shards), what="the metrics table")
    refuse_foreign_shards(shards, [str(c) for c in _READ])
    scratch: str | None = None
    if out is None:
        scratch = tempfile.mkdtemp(prefix="tali-metrics-")
        parts_dir = Path(scratch)
    else:
        parts_dir = parts_dir_for(out, opts)
    # Two runs writing one ``out`` take turns: the first must not remove the parts of the second.
    lock = exclusive(out) if out is not None else contextlib.nullcontext()
    try:
        with lock:
            rows = [_open(s).metadata.num_rows for s in shards]
            parts = run_shards(
                _MetricsShard(opts),
                shards,
                parts_dir=parts_dir,
                suffix=".parquet",
                workers=workers,
                shard_rows=rows,
                progress=progress,
                description="metrics",
                ray=ray,
            )
            table = pa.concat_tables([pq.read_table(p, schema=METRICS_SCHEMA) for p in parts])
            if out is not None:
                atomic_write_table(Path(out), table)
                remove_parts(out)
            return table
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


#: (metric, a rule worth a look) in the summary; each rule works as ``tali filter --where``.
SUMMARY_RULES: tuple[tuple[str, str | None], ...] = (
    ("video_duration_seconds", None),
    ("frozen_frame_ratio", "frozen_frame_ratio > 0.1"),
    ("black_frame_ratio", "black_frame_ratio > 0.05"),
    ("audio_rms_dbfs", "NOT audio_present"),
    ("audio_silence_ratio", "audio_silence_ratio > 0.5"),
    ("audio_clipping_ratio", "audio_clipping_ratio > 0.01"),
    ("av_start_offset_seconds", "abs(av_start_offset_seconds) > 0.1"),
    ("subtitle_lines", "subtitle_lines = 0"),
    ("title_vs_wikipedia_title", None),
)


@dataclass(frozen=True)
class MetricsSummary:
    """What ``tali metrics`` prints after a run: per metric the rows measured, the mean of
    the finite values and how many rows a flag rule selects (``None``: not counted, e.g.
    without duckdb). ``render`` fits 80 columns; notebooks get ``_repr_html_``."""

    rows: int
    out: str | None
    lines: tuple[tuple[str, int, float | None, int | None, str | None], ...]
    errors: int  # rows with a part that could not be measured

    def to_rows(self) -> list[dict[str, Any]]:
        return [
            {"metric": m, "measured": n, "mean": mean, "flagged": f, "rule": rule}
            for m, n, mean, f, rule in self.lines
        ]

    def to_frame(self) -> Any:
        return pa.Table.from_pylist(self.to_rows()).to_pandas().set_index("metric")

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<th>{h}</th>" for h in ("metric", "measured", "mean", "flagged", "flag rule (SQL)"))
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(c))}</td>"
                for c in (m, n, "-" if mean is None else f"{mean:.3f}", "-" if f is None else f, rule or "")
            )
            + "</tr>"
            for m, n, mean, f, rule in self.lines
        )
        return (
            f"<p>{self.rows} rows{html.escape(f' -> {self.out}' if self.out else '')}; "
            f"{self.errors} with parts that could not be measured</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def render(self, console: Any) -> None:
        """A table from 100 columns; narrower, each metric takes two lines (rule below)."""
        from rich import box
        from rich.table import Table

        console.print(f"[bold]{self.rows} rows[/bold]" + (f" -> {self.out}" if self.out else ""))
        if console.width >= 100:
            table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            for column in ("metric", "measured", "mean", "flagged", "flag rule (SQL)"):
                table.add_column(
                    column,
                    no_wrap=True,
                    justify="right" if column in ("measured", "mean", "flagged") else "left",
                )
            for m, n, mean, f, rule in self.lines:
                table.add_row(
                    m,
                    str(n),
                    "-" if mean is None else f"{mean:.3f}",
                    "-" if f is None else str(f),
                    rule or "",
                )
            console.print(table)
        else:
            for m, n, mean, f, rule in self.lines:
                numbers = f"measured {n}  mean {'-' if mean is None else f'{mean:.3f}'}"
                if rule:
                    numbers += f"  flagged {'-' if f is None else f}"
                console.print(f"[bold]{m}[/bold]  {numbers}", overflow="fold")
                if rule:
                    console.print(
                        f"    [dim]rule:[/dim] {rule}", overflow="fold", markup=True, highlight=False
                    )


def summarize_metrics(table: pa.Table, *, out: str | None = None, flag_counts: bool = True) -> MetricsSummary:
    """The summary of a metrics table; ``flag_counts`` runs each rule in DuckDB (the quality extra)."""
    import pyarrow.compute as pc

    lines = []
    for name, rule in SUMMARY_RULES:
        column = table.column(name)
        finite = pc.filter(column, pc.is_finite(column)) if pa.types.is_floating(column.type) else column
        mean = pc.mean(finite).as_py()
        flagged = None
        if rule is not None and flag_counts:
            import duckdb

            con = duckdb.connect()
            try:
                con.register("metrics", table)
                flagged = int(con.sql(f"SELECT count(*) FROM metrics WHERE {rule}").fetchall()[0][0])
            finally:
                con.close()
        lines.append((name, len(column) - column.null_count, mean, flagged, rule))
    errors = sum(1 for e in table.column("errors").to_pylist() if e)
    return MetricsSummary(table.num_rows, out, tuple(lines), errors)
