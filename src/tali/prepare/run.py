"""``prepare()``: every shard of a source re-encoded into the same Hub layout, resumably.

>>> report = prepare(root, "prepared/", workers=2)
>>> report.ok, report.summary()

One job per source shard (:mod:`tali.jobs`: a local process pool, or
Ray with ``ray=``). A job writes its shard into a hidden staging directory beside
the run's parts as a ``.partial`` file, renamed once its footer is on disk, then its
small JSON report as the run's part. Only when every job has succeeded are the
staged shards moved into ``OUT/data/``: a failed run (a bad row, a killed worker,
Ray failing to start its workers) leaves nothing in ``OUT/data/``, and a rerun
skips the shards whose part exists (their staged files are kept). The output has the source's exact schema
(HF features metadata included) and row groups; only ``youtube_video_content``
and ``youtube_video_size`` change. Every other column, the start time
included, is copied as is.

Each output shard's parquet footer (file key-value metadata) holds the provenance under
``tali.prepare``: the source shard and its row count, the settings, the
``tali`` version, the rows that failed (kept unchanged or dropped, per
``on_error``) with their errors, and the display-rotated rows whose pixels were
turned upright (``rotated_rows``: row, ``item_idx``, degrees). Output row ``k`` is the ``k``-th source row
not listed as dropped.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tali.atomic import publishing
from tali.atomic import write_bytes as atomic_write_bytes
from tali.data.durations import FILE_NAME as DURATIONS_FILE
from tali.data.durations import VERSION as DURATIONS_VERSION
from tali.data.durations import digest as durations_digest
from tali.data.durations import read_index as read_durations
from tali.data.sources import SourceLike, resolve_local_files
from tali.errors import TaliConfigError, TaliDataError, TaliSourceError
from tali.jobs import parts_dir_of, remove_parts, report_rows, run_shards
from tali.jobs.parts import part_path, shard_identity
from tali.outputs import check_output_apart, one_writer, source_places
from tali.prepare.encode import reencode
from tali.prepare.settings import PrepareSettings
from tali.schema import TALI_SCHEMA, Column, schema_matches

__all__ = ["METADATA_KEY", "PrepareReport", "RowFailure", "prepare", "read_provenance"]

METADATA_KEY = b"tali.prepare"
REPORT_NAME = "tali-prepare.json"
_VIDEO, _SIZE, _ITEM = str(Column.YOUTUBE_VIDEO_CONTENT), str(Column.YOUTUBE_VIDEO_SIZE), str(Column.ITEM_IDX)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tali-dataset")
    except PackageNotFoundError:  # a source checkout
        return "0+unknown"


@dataclass(frozen=True)
class RowFailure:
    """A row whose clip could not be re-encoded; ``action`` is ``keep`` or ``drop``."""

    shard: str
    row: int
    item_idx: int | None
    action: str
    error: str
    message: str


@dataclass
class PrepareReport:
    shards: dict[str, dict[str, Any]] = field(default_factory=dict)  # output name -> shard report
    failures: list[RowFailure] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(s["rows"] for s in self.shards.values())

    @property
    def written(self) -> int:
        return sum(s["written"] for s in self.shards.values())

    @property
    def ok(self) -> bool:
        """Every row re-encoded (no row kept unchanged or dropped)."""
        return not self.failures

    def summary(self) -> dict[str, Any]:
        bytes_in = sum(s["bytes_in"] for s in self.shards.values())
        bytes_out = sum(s["bytes_out"] for s in self.shards.values())
        return {
            "shards": len(self.shards),
            "rows": self.rows,
            "written": self.written,
            "reencoded": self.rows - len(self.failures),
            "kept_unchanged": sum(f.action == "keep" for f in self.failures),
            "dropped": sum(f.action == "drop" for f in self.failures),
            "rotated_upright": sum(len(s.get("rotated_rows", ())) for s in self.shards.values()),
            "errors": dict(Counter(f.error for f in self.failures)),
            "clip_bytes_in": bytes_in,
            "clip_bytes_out": bytes_out,
            "clip_size_ratio": bytes_out / bytes_in if bytes_in else None,
            "encode_cpu_seconds": sum(s["cpu_seconds"] for s in self.shards.values()),
        }

    def to_json(self) -> str:
        failures = [f.__dict__ for f in self.failures]
        return json.dumps({"summary": self.summary(), "shards": self.shards, "failures": failures}, indent=1)


def read_provenance(shard: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``tali.prepare`` record of a prepared shard (``None`` for a shard not made by prepare)."""
    metadata = pq.read_metadata(shard).metadata or {}
    raw = metadata.get(METADATA_KEY)
    return None if raw is None else json.loads(raw)


def _reencode_column(
    table: pa.Table, shard_name: str, first_row: int, settings: PrepareSettings, rotated: list[dict[str, Any]]
) -> tuple[pa.Table, list[RowFailure], int, int]:
    """The row group with its clips re-encoded; appends the display-rotated rows (turned
    upright in the output) to ``rotated``."""
    clips = table.column(_VIDEO).to_pylist()
    items = table.column(_ITEM).to_pylist()
    out: list[bytes | None] = []
    keep_mask: list[bool] = []
    failures: list[RowFailure] = []
    bytes_in = bytes_out = 0
    for offset, (clip, item_idx) in enumerate(zip(clips, items)):
        bytes_in += len(clip or b"")
        try:
            result = reencode(clip, settings, item_idx=item_idx)
        except TaliDataError as exc:
            if settings.on_error == "raise":
                raise exc.with_location(shard=shard_name, row=first_row + offset)
            action = "keep" if settings.on_error == "keep" else "drop"
            failures.append(
                RowFailure(
                    shard_name, first_row + offset, item_idx, action, type(exc).__name__, str(exc)[:300]
                )
            )
            new = clip
            keep_mask.append(action == "keep")
        else:
            new = result.data
            keep_mask.append(True)
            if result.rotation:
                rotated.append({"row": first_row + offset, "item_idx": item_idx, "degrees": result.rotation})
        out.append(new)
        bytes_out += len(new or b"") if keep_mask[-1] else 0
    index = table.schema.get_field_index(_VIDEO)
    table = table.set_column(index, table.schema.field(index), pa.array(out, table.schema.field(index).type))
    size_index = table.schema.get_field_index(_SIZE)
    sizes = pa.array([None if c is None else len(c) for c in out], table.schema.field(size_index).type)
    table = table.set_column(size_index, table.schema.field(size_index), sizes)
    if not all(keep_mask):
        table = table.filter(pa.array(keep_mask))
    return table, failures, bytes_in, bytes_out


def _normalised(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every struct's fields in name order (and so for nested lists)."""
    if pa.types.is_struct(kind):
        fields = sorted((kind.field(i) for i in range(kind.num_fields)), key=lambda f: f.name)
        return pa.struct([f.with_type(_normalised(f.type)) for f in fields])
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        item = kind.value_field
        maker = pa.list_ if pa.types.is_list(kind) else pa.large_list
        return maker(item.with_type(_normalised(item.type)))
    return kind


def schema_difference(schema: pa.Schema) -> str | None:
    """What separates ``schema`` from TALI's, in words; ``None`` when it holds the same
    columns and fields, in any order (a ``wit_features`` struct listing its fields in
    another order is the same data)."""
    ours = {f.name: f.type for f in TALI_SCHEMA}
    theirs = {f.name: f.type for f in schema.remove_metadata()}
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    problems = []
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"extra columns {extra}")
    for name in sorted(set(ours) & set(theirs)):
        if not _normalised(ours[name]).equals(_normalised(theirs[name])):
            problems.append(f"column {name!r} is {theirs[name]}, TALI has {ours[name]}")
    return "; ".join(problems) or None


def _finished_parts(shards: list[str], out: Path, settings: PrepareSettings, parts_dir: Path) -> None:
    """A rerun of a finished run skips its shards: each output shard whose footer says it was
    made from this very source shard (path and identity) with these settings gets its part
    back from the finished run's report, so :func:`run_shards` does not re-encode it."""
    try:
        report = json.loads((out / REPORT_NAME).read_text())
        finished, failures = report["shards"], report["failures"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for shard in shards:
        name = Path(shard).name
        target = out / "data" / name
        part = part_path(parts_dir, shard, ".json")
        if part.exists() or name not in finished or not target.exists():
            continue
        try:
            provenance = read_provenance(target)
        except (OSError, pa.ArrowException):
            continue
        if (
            provenance is not None
            and provenance.get("source_path") == str(Path(shard).resolve())
            and provenance.get("source_identity") == shard_identity(shard)
            and provenance.get("settings") == settings.to_dict()
        ):
            parts_dir.mkdir(parents=True, exist_ok=True)
            entry = dict(finished[name], failures=[f for f in failures if f.get("shard") == name])
            atomic_write_bytes(part, json.dumps(entry).encode())


def _carry_durations(shards: list[str], data_dir: Path) -> None:
    """The source's clip-length index (``tali-durations.json``) for the prepared copy: prepare
    keeps every clip's timeline, so each source shard's lengths hold for the output shard of
    the same name. The index is rewritten (not copied) with the output shards' sizes, which is
    what the loader checks it against; a source shard whose entry is stale is left out."""
    recorded: dict[str, dict] = {}
    limit = None
    for directory in sorted({Path(s).parent for s in shards}):
        try:
            blob = read_durations(directory / DURATIONS_FILE)
        except ValueError:
            continue
        if not isinstance(blob, dict) or blob.get("version") != DURATIONS_VERSION:
            continue
        entries = blob.get("shards")
        if not isinstance(entries, dict) or blob.get("digest") != durations_digest(
            entries, blob.get("max_clip_seconds")
        ):
            continue
        limit = blob.get("max_clip_seconds")
        for shard in shards:
            source, out = Path(shard), data_dir / Path(shard).name
            entry = entries.get(source.name)
            if not isinstance(entry, dict) or entry.get("bytes") != source.stat().st_size:
                continue  # not indexed, or changed since
            if source.parent == directory and out.is_file():
                recorded[out.name] = {"bytes": out.stat().st_size, "clip_seconds": entry.get("clip_seconds")}
    if recorded and limit is not None:
        blob = {
            "version": DURATIONS_VERSION,
            "max_clip_seconds": limit,
            "shards": recorded,
            "digest": durations_digest(recorded, limit),
        }
        atomic_write_bytes(data_dir / DURATIONS_FILE, json.dumps(blob, sort_keys=True).encode())


@dataclass(frozen=True)
class _PrepareShard:
    """One source shard -> ``data_dir/<its name>`` (atomic), then its JSON report as ``part``."""

    settings: PrepareSettings
    data_dir: str

    def __call__(self, shard: str, part: Path) -> None:
        name = Path(shard).name
        started = time.process_time()
        try:
            handle = pq.ParquetFile(shard)
        except (OSError, pa.ArrowException) as exc:
            raise TaliSourceError(f"cannot read parquet shard {shard}: {exc}") from exc
        schema = handle.schema_arrow
        if not schema_matches(schema):
            difference = schema_difference(schema)
            if difference is not None:
                raise TaliSourceError(
                    f"{shard} does not have the TALI schema ({difference}); refusing to prepare it"
                )
        final = Path(self.data_dir) / name
        for stale in final.parent.glob(f".{name}.partial-*"):  # from a killed attempt
            stale.unlink(missing_ok=True)
        partial = final.with_name(f".{name}.partial-{os.getpid()}")
        failures: list[RowFailure] = []
        rotated: list[dict[str, Any]] = []
        bytes_in = bytes_out = written = rows = 0
        with publishing(partial, final), pq.ParquetWriter(partial, schema) as writer:
            for group in range(handle.num_row_groups):
                table = handle.read_row_group(group)
                new, bad, b_in, b_out = _reencode_column(table, name, rows, self.settings, rotated)
                rows += table.num_rows
                failures += bad
                bytes_in, bytes_out, written = bytes_in + b_in, bytes_out + b_out, written + new.num_rows
                if new.num_rows:
                    writer.write_table(new.cast(schema), row_group_size=max(1, table.num_rows))
                report_rows(table.num_rows)
            provenance = {
                "source_shard": name,
                "source_path": str(Path(shard).resolve()),
                "source_identity": shard_identity(shard),
                "source_rows": rows,
                "written_rows": written,
                "dropped_rows": [f.row for f in failures if f.action == "drop"],
                "failures": [f.__dict__ for f in failures],
                "rotated_rows": rotated,
                "settings": self.settings.to_dict(),
                "tali_version": _version(),
            }
            writer.add_key_value_metadata({METADATA_KEY: json.dumps(provenance).encode()})
        report = {
            "source": name,
            "rows": rows,
            "written": written,
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "cpu_seconds": time.process_time() - started,
            "failures": [f.__dict__ for f in failures],
            "rotated_rows": rotated,
        }
        atomic_write_bytes(part, json.dumps(report).encode())


# Two runs into one ``out`` take turns (neither deletes the other's staging).
@one_writer("out", source="source")
def prepare(
    source: SourceLike,
    out: str | os.PathLike[str],
    *,
    split: str | None = None,
    settings: PrepareSettings | None = None,
    workers: int = 1,
    progress: bool = False,
    ray: str | bool | None = None,
) -> PrepareReport:
    """Re-encode every shard of ``source`` (or of one ``split``) into ``out/data/``.

    ``workers`` processes share the shards; ``ray`` runs them as Ray tasks instead
    (``True``: a local cluster, or an address such as ``"auto"`` / ``"ray://host:10001"``).
    A rerun with the same settings resumes; a rerun of a finished run skips every shard it
    finished (same source shard, same settings) and keeps its report. ``out/tali-prepare.json``
    is written last, then the source's ``tali-durations.json`` is carried to ``out/data/``.
    """
    settings = settings or PrepareSettings()
    shards = resolve_local_files(source, split)
    names = [Path(s).name for s in shards]
    if len(set(names)) != len(names):
        raise TaliConfigError("source shards must have distinct file names to keep the Hub layout")
    out = Path(out)
    check_output_apart(out, source_places(source, shards), what="the prepared copy")
    data_dir = out / "data"
    if any(Path(s).resolve().parent == data_dir.resolve() for s in shards):
        raise TaliConfigError(f"output {out} is the source; choose another directory")
    key = {"settings": settings.to_dict(), "shards": [str(Path(s).resolve()) for s in shards]}
    parts_dir = parts_dir_of(out / ".tali-prepare", key)
    staged = parts_dir / "data"  # hidden: published into data/ only when every job succeeded
    staged.mkdir(parents=True, exist_ok=True)
    rows = [pq.ParquetFile(s).metadata.num_rows for s in shards]
    _finished_parts(shards, out, settings, parts_dir)
    parts = run_shards(
        _PrepareShard(settings, str(staged)),
        shards,
        parts_dir=parts_dir,
        suffix=".json",
        workers=workers,
        shard_rows=rows,
        progress=progress,
        description="prepare",
        ray=ray,
    )
    report = PrepareReport()
    for name, part in zip(names, parts):
        shard_report = json.loads(part.read_text())
        report.failures += [RowFailure(**f) for f in shard_report.pop("failures")]
        report.shards[name] = shard_report
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (staged / name).exists():
            os.replace(staged / name, data_dir / name)
        elif not (data_dir / name).exists():  # published by a run stopped before its cleanup
            raise TaliSourceError(f"the staged output of {name} is missing; remove {parts_dir} and rerun")
    atomic_write_bytes(out / REPORT_NAME, report.to_json().encode())
    _carry_durations(shards, data_dir)
    remove_parts(out / ".tali-prepare")
    return report
