"""``validate``: check every row of a source, in parallel, resumably, and report.

>>> report = validate(root, split="val", workers=2, report="val.json")
>>> report.ok, report.summary()["failed_rows"]

Each shard is one job (see :mod:`tali.jobs`); a job reads its
shard a row group at a time, projecting only the columns the chosen checks
need, and records every failure as ``(item_idx, shard, row, check, error,
message)``. No row stops the run: an unexpected exception is recorded like
a typed one, under its own class name.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tali.atomic import exclusive
from tali.atomic import write_bytes as atomic_write_bytes
from tali.data.rows import row_item_idx, row_to_python
from tali.data.sources import SourceLike, refuse_foreign_shards, resolve_local_files
from tali.errors import TaliConfigError, TaliDataError
from tali.jobs import parts_dir_of, remove_parts, report_rows, run_shards
from tali.outputs import check_output_apart, source_places
from tali.quality.checks import CHECKS, CheckLimits, check_shard_schema, columns_for_checks
from tali.schema import TALI_SCHEMA

__all__ = ["ALL_CHECKS", "Failure", "ValidationReport", "parts_dir_for", "validate"]

ALL_CHECKS: tuple[str, ...] = tuple(CHECKS)


@dataclass(frozen=True)
class Failure:
    """One failed check. ``row`` is the row number inside ``shard`` (``None``: the whole shard)."""

    item_idx: int | None
    shard: str
    row: int | None
    check: str
    field: str | None
    error: str
    message: str


@dataclass
class ValidationReport:
    checks: tuple[str, ...]
    shards: list[str]
    rows: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failed_rows(self) -> int:
        return len({(f.shard, f.row) for f in self.failures})

    def summary(self) -> dict[str, Any]:
        per_check: dict[str, Counter[str]] = {name: Counter() for name in ("parquet", "read", *self.checks)}
        for f in self.failures:
            per_check.setdefault(f.check, Counter())[f.error] += 1
        return {
            "rows": self.rows,
            "shards": len(self.shards),
            "failed_rows": self.failed_rows,
            "failures": len(self.failures),
            "by_check": {name: dict(c) for name, c in per_check.items() if c or name in self.checks},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "checks": list(self.checks),
            "shards": self.shards,
            "failures": [asdict(f) for f in self.failures],
        }

    def write(self, path: str | Path) -> None:
        atomic_write_bytes(Path(path), json.dumps(self.to_dict(), indent=1).encode())

    def to_frame(self) -> Any:
        """One row per failure (item_idx, shard, row, check, field, error, message) as a
        pandas ``DataFrame`` (needs pandas)."""
        import pyarrow as pa

        columns = ("item_idx", "shard", "row", "check", "field", "error", "message")
        return (
            pa.Table.from_pylist([asdict(f) for f in self.failures] or [dict.fromkeys(columns)])
            .slice(0, len(self.failures))
            .to_pandas()
        )

    def _repr_html_(self) -> str:
        """What a notebook shows: the per-check table and the first 50 failures, whole."""
        import html

        def row(cells: Any, tag: str = "td") -> str:
            return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"

        summary = self.summary()
        checks = "".join(
            row((name, sum(errors.values()), ", ".join(f"{k} x{v}" for k, v in errors.items())))
            for name, errors in summary["by_check"].items()
        )
        failures = "".join(
            row((f.item_idx, f.shard, f.row, f.check, f.field, f.error, f.message))
            for f in self.failures[:50]
        )
        more = (
            f"<p>... {len(self.failures) - 50} more failures (to_frame() has them all)</p>"
            if len(self.failures) > 50
            else ""
        )
        return (
            f"<p>validated {self.rows} rows in {len(self.shards)} shards: {summary['failed_rows']} rows failed</p>"
            f"<table><thead>{row(('check', 'failed', 'errors'), 'th')}</thead><tbody>{checks}</tbody></table>"
            + (
                f"<table><thead>{row(('item_idx', 'shard', 'row', 'check', 'field', 'error', 'message'), 'th')}"
                f"</thead><tbody>{failures}</tbody></table>{more}"
                if self.failures
                else ""
            )
        )

    def table(self) -> Any:
        """A ``rich`` table: one line per check with rows failed and the error classes."""
        from rich.table import Table

        table = Table(title=f"validated {self.rows} rows in {len(self.shards)} shards")
        for column in ("check", "failed", "errors"):
            table.add_column(column)
        for name, errors in self.summary()["by_check"].items():
            count = sum(errors.values())
            style = "red" if count else "green"
            table.add_row(
                name, f"[{style}]{count}[/{style}]", ", ".join(f"{k} x{v}" for k, v in errors.items())
            )
        return table


@dataclass(frozen=True)
class _ValidateShard:
    """The per-shard job; a frozen dataclass so it pickles into worker processes."""

    checks: tuple[str, ...]
    limits: CheckLimits

    def __call__(self, shard: str, part: Path) -> None:
        name = Path(shard).name
        failures: list[Failure] = []
        rows = 0
        ids: list[int | None] = []
        try:
            handle = pq.ParquetFile(shard)
            schema = handle.schema_arrow
        except (OSError, pa.ArrowException) as exc:
            failures.append(Failure(None, name, None, "parquet", None, type(exc).__name__, str(exc)[:300]))
            return self._write(part, name, rows, failures, ids)
        for column, message in check_shard_schema(schema, self.checks):
            failures.append(Failure(None, name, None, "parquet", column, "TaliSchemaError", message))
        columns = columns_for_checks(self.checks, tuple(schema.names))
        for group in range(handle.num_row_groups):
            try:
                table = handle.read_row_group(group, columns=columns)
            except (OSError, pa.ArrowException) as exc:
                failures.append(
                    Failure(
                        None,
                        name,
                        None,
                        "parquet",
                        None,
                        type(exc).__name__,
                        f"row group {group}: {str(exc)[:300]}",
                    )
                )
                continue
            for offset in range(table.num_rows):
                failures.extend(self._row(table, offset, name, rows))
                ids.append(row_item_idx(table, offset))
                rows += 1
            report_rows(table.num_rows)
        return self._write(part, name, rows, failures, ids)

    def _row(self, table: pa.Table, offset: int, shard: str, row: int) -> list[Failure]:
        item_idx = row_item_idx(table, offset)
        try:
            values = row_to_python(table, offset)
        except TaliDataError as exc:
            return [Failure(item_idx, shard, row, "read", exc.field, type(exc).__name__, exc.message)]
        out = []
        for name in self.checks:
            check = CHECKS[name][0]
            try:
                check(values, self.limits)
            except TaliDataError as exc:
                out.append(Failure(item_idx, shard, row, name, exc.field, type(exc).__name__, exc.message))
            except Exception as exc:  # noqa: BLE001 - a validator records, it never dies on a row
                out.append(Failure(item_idx, shard, row, name, None, type(exc).__name__, str(exc)[:300]))
        return out

    @staticmethod
    def _write(part: Path, shard: str, rows: int, failures: list[Failure], ids: list[int | None]) -> None:
        blob = {"shard": shard, "rows": rows, "failures": [asdict(f) for f in failures], "item_ids": ids}
        atomic_write_bytes(part, json.dumps(blob).encode())


def _parse_checks(checks: Sequence[str] | None) -> tuple[str, ...]:
    if checks is None:
        return ALL_CHECKS
    chosen = tuple(dict.fromkeys(checks))
    unknown = [c for c in chosen if c not in CHECKS]
    if unknown or not chosen:
        raise TaliConfigError(f"unknown checks {unknown!r}; choose from {', '.join(ALL_CHECKS)}")
    return chosen


def parts_dir_for(report: str | Path, checks: tuple[str, ...], limits: CheckLimits) -> Path:
    """Where a run writing ``report`` keeps per-shard parts. The name depends on the
    checks and limits, so a rerun with other settings never reuses stale parts."""
    return parts_dir_of(report, [list(checks), asdict(limits)])


def validate(
    source: SourceLike,
    *,
    split: str | None = None,
    checks: Sequence[str] | None = None,
    workers: int = 1,
    limits: CheckLimits | None = None,
    report: str | Path | None = None,
    progress: bool = False,
    ray: str | bool | None = None,
) -> ValidationReport:
    """Validate every row of ``source`` (one split, or every shard with ``split=None``).

    With ``report``, per-shard results are kept in ``<report>.parts/`` until
    the run completes, so an interrupted run resumes where it stopped; the
    final report is written to ``report`` as JSON.
    """
    chosen = _parse_checks(checks)
    limits = limits or CheckLimits()
    shards = resolve_local_files(source, split)
    if report is not None:
        check_output_apart(report, source_places(source, shards), what="the report")
    refuse_foreign_shards(shards, columns_for_checks(chosen, tuple(TALI_SCHEMA.names)))
    scratch = None
    if report is not None:
        parts_dir = parts_dir_for(report, chosen, limits)
    else:
        scratch = tempfile.mkdtemp(prefix="tali-validate-")
        parts_dir = Path(scratch)
    # Two runs writing one ``report`` take turns: the first must not remove the parts of the second.
    lock = exclusive(report) if report is not None else contextlib.nullcontext()
    try:
        with lock:
            parts = run_shards(
                _ValidateShard(chosen, limits),
                shards,
                parts_dir=parts_dir,
                suffix=".json",
                workers=workers,
                shard_rows=[_num_rows(s) for s in shards],
                progress=progress,
                description="validating",
                ray=ray,
            )
            result = ValidationReport(checks=chosen, shards=[Path(s).name for s in shards])
            seen: dict[int, tuple[str, int]] = {}
            for part in parts:
                blob = json.loads(part.read_text())
                result.rows += blob["rows"]
                result.failures.extend(Failure(**f) for f in blob["failures"])
                if "item_idx" in chosen:
                    result.failures.extend(_duplicates(blob, seen))
            if report is not None:
                result.write(report)
                remove_parts(report)
            return result
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _duplicates(blob: dict[str, Any], seen: dict[int, tuple[str, int]]) -> list[Failure]:
    """``item_idx`` keys metrics, indexes and error reports: a repeat is a failure."""
    out = []
    for row, item_idx in enumerate(blob["item_ids"]):
        if item_idx is None:
            continue
        first = seen.setdefault(item_idx, (blob["shard"], row))
        if first != (blob["shard"], row):
            out.append(
                Failure(
                    item_idx,
                    blob["shard"],
                    row,
                    "item_idx",
                    "item_idx",
                    "TaliSchemaError",
                    f"duplicate item_idx {item_idx}, first at {first[0]} row {first[1]}",
                )
            )
    return out


def _num_rows(path: str) -> int:
    """Rows in a shard per its footer (0 when unreadable: the job reports that)."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException):
        return 0
