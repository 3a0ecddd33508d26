"""Evaluate a user's SQL WHERE clause safely: metadata only, no files, no second statement.

A predicate (``tali filter --where``, the web viewer's search box) is text from
a user, so it is treated as untrusted. Three layers, each enough on its own
for the attacks it names:

1. **Parse, don't match.** The clause is wrapped as ``SELECT * FROM rows WHERE
   (<clause>)`` and parsed by DuckDB's own parser (``json_serialize_sql``).
   The tree must be exactly that one SELECT (a ``UNION`` or a second statement
   changes its shape), and the clause may hold only column references,
   constants, operators, casts, ``CASE``, lambdas and *scalar* functions: no
   subquery (so no ``FROM``, so no ``read_csv``/``read_parquet``/``glob``), no
   window, aggregate or parameter, no ``COLUMNS(*)``. Functions that build a
   value of a size the user picks (``repeat``, ``lpad``, ``range``...) or read
   settings are refused too. Bound, the clause must be ``BOOLEAN``.
2. **No file system.** The connection is opened with the shard files (and the
   metrics file) as its only ``allowed_paths``, then
   ``enable_external_access=false`` and ``lock_configuration=true``: no other
   file, directory, URL, extension or ``ATTACH`` can be reached, and no setting
   changed back, even by a clause that slipped through layer 1.
3. **Only the metadata views.** ``rows`` holds every shard column except the
   media columns (``image``, ``youtube_video_content``) plus ``shard``,
   ``shard_path`` and ``row``, left-joined with the metrics on ``item_idx``.

Evaluation is bounded (:class:`SandboxLimits`): it runs in a child process
(:mod:`tali.sql.bounded`) with DuckDB's ``memory_limit`` and ``threads``, an
address-space limit on the whole process, a wall-clock limit (the child is
killed) and a cap on the bytes of the result; :func:`explain_where` (the plan
``tali.quality.filter.explain`` prints) runs in the same child, because planning folds
constants: ``EXPLAIN`` of a clause evaluates its constant sub-expressions. DuckDB's ``memory_limit`` covers its
buffer manager, not the strings a scalar function builds: ``printf('%1000000000d', 1)``
took 7 s and 2 GB in-process past a 256 MB limit and an interrupt after 2 s (measured
here, DuckDB 2.0), so the process limit is the one that holds. Functions known to
amplify (``printf``, ``format``, ``list_reduce``: ``a || a`` doubled 32 times) are also
refused by name before anything runs. Any limit crossed is a
:class:`~tali.errors.TaliQueryLimitError` (a :class:`~tali.errors.TaliConfigError`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

from tali._optional import require
from tali.errors import TaliConfigError, TaliQueryLimitError, TaliSourceError
from tali.schema import Column

__all__ = [
    "METADATA_EXCLUDED",
    "MetricsLike",
    "SandboxLimits",
    "TaliQueryLimitError",
    "check_where",
    "evaluate_where",
    "explain_where",
    "sandboxed_connection",
]

#: Media columns a predicate can never see.
METADATA_EXCLUDED = (str(Column.IMAGE), str(Column.YOUTUBE_VIDEO_CONTENT))
MetricsLike: TypeAlias = str | os.PathLike[str] | pa.Table | None

#: Expression node classes a clause may contain (DuckDB's parse tree names).
_ALLOWED_CLASSES = frozenset(
    {
        "BETWEEN",
        "CASE",
        "CAST",
        "COLLATE",
        "COLUMN_REF",
        "COMPARISON",
        "CONJUNCTION",
        "CONSTANT",
        "FUNCTION",
        "LAMBDA",
        "LAMBDA_REF",
        "OPERATOR",
        "TYPE",
    }
)
#: Scalar functions refused in a clause: their output size (or time) is a number the
#: user picks (``repeat('a', 3e9)`` runs for minutes and ignores ``memory_limit``), or
#: they read the connection's settings.
_REFUSED_FUNCTIONS = frozenset(
    {
        "repeat",
        "lpad",
        "rpad",
        "range",
        "generate_series",
        "list_resize",
        "array_resize",
        "list_repeat",
        "current_setting",
        "getvariable",
        "getenv",
        "sleep_ms",
        # A width or count in a format string: printf('%1000000000d', 1) is 1 GB per row.
        "printf",
        "format",
        "sprintf",
        # An accumulator that may double its value per list element: 2^n bytes.
        "list_reduce",
        "array_reduce",
        "reduce",
        "list_aggregate",
        "array_aggregate",
        "list_aggr",
        "aggregate",
    }
)


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """What one evaluation of a user's clause may cost.

    ``memory_limit`` and ``threads`` are DuckDB's settings; ``max_process_bytes``
    the child process's address space (DuckDB + pyarrow map about 1.1 GB before any
    query, measured here); ``timeout_seconds`` its wall clock (then it is killed);
    ``max_result_bytes`` the Arrow bytes of the rows returned.
    """

    memory_limit: str = "1GB"
    threads: int = 2
    max_process_bytes: int = 3 << 30
    timeout_seconds: float = 600.0
    max_result_bytes: int = 512 << 20

    def __post_init__(self) -> None:
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 1:
            raise TaliConfigError(f"SandboxLimits.threads must be an int >= 1, got {self.threads!r}")
        for name in ("max_process_bytes", "max_result_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TaliConfigError(f"SandboxLimits.{name} must be an int >= 1, got {value!r}")
        value = self.timeout_seconds
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < float("inf"):
            raise TaliConfigError(f"SandboxLimits.timeout_seconds must be a finite number > 0, got {value!r}")


def _duckdb() -> Any:
    return require("duckdb", extra="quality", feature="SQL filtering")


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal (paths in ``read_parquet([...])``)."""
    return "'" + text.replace("'", "''") + "'"


_quote = sql_string


def sandboxed_connection(
    shards: Sequence[str],
    metrics: MetricsLike = None,
    *,
    memory_limit: str = SandboxLimits.memory_limit,
    threads: int | None = SandboxLimits.threads,
) -> Any:
    """An in-memory DuckDB whose only data are the views ``metadata``, ``metrics``
    (when given) and ``rows``, with external access disabled and the
    configuration locked. Close it when done."""
    if not shards:
        raise TaliSourceError("no shards to filter")
    duckdb = _duckdb()
    files = [str(Path(s).resolve()) for s in shards]
    metrics_file = None
    if metrics is not None and not isinstance(metrics, pa.Table):
        if not Path(metrics).is_file():
            raise TaliSourceError(f"metrics table not found: {metrics}")
        metrics_file = str(Path(metrics).resolve())
    settings: dict[str, Any] = {"memory_limit": memory_limit}
    if threads is not None:
        settings["threads"] = threads
    con = duckdb.connect(":memory:", config=settings)
    try:
        schema = pq.read_schema(files[0])
        columns = ", ".join(f'"{c}"' for c in schema.names if c not in METADATA_EXCLUDED)
        listing = "[" + ", ".join(_quote(f) for f in files) + "]"
        con.execute(
            f"CREATE VIEW metadata AS SELECT {columns}, parse_filename(filename) AS shard, "
            f"filename AS shard_path, file_row_number AS row "
            f"FROM read_parquet({listing}, filename=true, file_row_number=true)"
        )
        if metrics is None:
            con.execute("CREATE VIEW rows AS SELECT * FROM metadata")
        else:
            if isinstance(metrics, pa.Table):
                con.register("metrics_table", metrics)
                source = "metrics_table"
            else:
                source = f"read_parquet({_quote(str(metrics_file))})"
            con.execute(f"CREATE VIEW metrics AS SELECT * EXCLUDE (shard, row) FROM {source}")
            con.execute("CREATE VIEW rows AS SELECT * FROM metadata LEFT JOIN metrics USING (item_idx)")
        allowed = files + ([metrics_file] if metrics_file else [])
        con.execute("SET allowed_paths = [" + ", ".join(_quote(p) for p in allowed) + "]")
        con.execute("SET allowed_directories = []")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _template(clause: str) -> str:
    return f"SELECT * FROM rows WHERE ({clause}\n)"  # the newline ends a trailing -- comment


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _refuse(why: str) -> TaliConfigError:
    return TaliConfigError(
        f"the WHERE clause must be a single boolean expression over the rows' columns: {why}"
    )


def check_where(con: Any, clause: str) -> str:
    """Check ``clause`` with DuckDB's parser and binder; return it as it will be run.

    Raises :class:`~tali.errors.TaliConfigError` for anything that is not a
    single boolean expression over the columns of ``rows`` (see the module doc).
    """
    duckdb = _duckdb()
    if not isinstance(clause, str) or not clause.strip():
        raise _refuse("it is empty")
    query = _template(clause)
    try:
        parsed = con.extract_statements(query)
    except duckdb.Error as exc:
        raise TaliConfigError(f"cannot parse the WHERE clause: {exc}") from None
    if len(parsed) != 1 or parsed[0].type != duckdb.StatementType.SELECT:
        raise _refuse("it holds more than one statement (a ';' or a statement of its own)")
    blob = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0])
    if blob.get("error"):
        raise TaliConfigError(f"cannot parse the WHERE clause: {blob.get('error_message')}")
    statements = blob.get("statements", [])
    if len(statements) != 1:
        raise _refuse("it holds more than one statement")
    node = statements[0]["node"]
    if node.get("type") != "SELECT_NODE":
        raise _refuse(f"it turns the query into a {node.get('type')} (UNION, INTERSECT...)")
    source = node.get("from_table") or {}
    select_list = node.get("select_list") or []
    intact = (
        source.get("type") == "BASE_TABLE"
        and source.get("table_name") == "rows"
        and not source.get("schema_name")
        and not source.get("catalog_name")
        and len(select_list) == 1
        and select_list[0].get("class") == "STAR"
        and not select_list[0].get("exclude_list")
        and not select_list[0].get("replace_list")
        and not node.get("modifiers")
        and not (node.get("cte_map") or {}).get("map")
        and not node.get("group_expressions")
        and not node.get("group_sets")
        and node.get("having") is None
        and node.get("qualify") is None
        and node.get("sample") is None
        and not statements[0].get("named_param_map")
    )
    if not intact:
        raise _refuse("it changes the query around it")
    for expr in _walk(node.get("where_clause")):
        kind = expr.get("class")
        if kind is None:
            if "node" in expr or "from_table" in expr:
                raise _refuse("subqueries are not allowed")
            continue
        if kind not in _ALLOWED_CLASSES:
            detail = {"SUBQUERY": "subqueries are not allowed", "STAR": "COLUMNS(*) / * are not allowed"}
            raise _refuse(detail.get(kind, f"{kind.lower()} expressions are not allowed"))
        if kind == "FUNCTION":
            name = str(expr.get("function_name", "")).lower()
            if expr.get("schema") or expr.get("catalog"):
                raise _refuse(f"qualified function {name!r} is not allowed")
            if name in _REFUSED_FUNCTIONS:
                raise _refuse(f"function {name!r} is not allowed (its output size is the user's to pick)")
            # A name that is no scalar function (a table function such as read_csv, a typo)
            # is left to the binder below, which refuses it in its own words before running anything.
    try:
        types = con.execute(f"SELECT ({clause}\n) AS keep FROM rows LIMIT 0").description
    except duckdb.Error as exc:
        raise TaliConfigError(
            f"filter failed: the WHERE clause does not bind: {type(exc).__name__}: {exc}"
        ) from None
    kind = str(types[0][1]).upper()
    if kind not in ("BOOLEAN", "BOOL", "NULL", '"NULL"'):
        raise _refuse(f"it is of type {kind}, not BOOLEAN")
    return clause


@contextmanager
def _limited(con: Any, limits: SandboxLimits, doing: str) -> Iterator[None]:
    """Run a statement on ``con`` under ``limits.timeout_seconds`` (DuckDB's interrupt), with
    DuckDB's errors as typed ones; ``doing`` names the work in them."""
    duckdb = _duckdb()
    timer = threading.Timer(limits.timeout_seconds, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    except duckdb.InterruptException:
        raise TaliQueryLimitError(
            f"{doing} ran longer than {limits.timeout_seconds} s and was stopped"
        ) from None
    except duckdb.OutOfMemoryException as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise TaliQueryLimitError(
            f"{doing} needed more memory than the sandbox allows (DuckDB memory_limit "
            f"{limits.memory_limit}, {limits.max_process_bytes} bytes per process): {first}"
        ) from None
    except (duckdb.BinderException, duckdb.ParserException, duckdb.ConversionException) as exc:
        raise TaliConfigError(f"filter failed: {type(exc).__name__}: {exc}") from None
    except duckdb.Error as exc:
        raise TaliSourceError(f"filter failed: {type(exc).__name__}: {exc}") from None
    finally:
        timer.cancel()


def evaluate_where(
    shards: Sequence[str],
    where: str | None,
    *,
    metrics: MetricsLike = None,
    columns: Sequence[str] | None = ("item_idx", "shard", "shard_path", "row"),
    limit: int | None = None,
    offset: int = 0,
    timeout_seconds: float | None = None,
    memory_limit: str | None = None,
    limits: SandboxLimits | None = None,
) -> pa.Table:
    """The rows of ``shards`` (in shard, row order) where the user's ``where`` holds.

    ``columns``: which columns of ``rows`` to return (``None``: all of them,
    never the media columns). ``limit``/``offset`` page through the result.
    ``where=None`` or blank keeps every row. Untrusted text is safe here: see
    the module doc for what is refused and why. ``limits`` bounds the evaluation
    (``timeout_seconds`` / ``memory_limit`` override its fields); crossing one raises
    :class:`~tali.errors.TaliQueryLimitError`.
    """
    from tali.sql.bounded import run_bounded

    limits = limits or SandboxLimits()
    changes: dict[str, Any] = {}
    if timeout_seconds is not None:
        changes["timeout_seconds"] = timeout_seconds
    if memory_limit is not None:
        changes["memory_limit"] = memory_limit
    if changes:
        limits = dataclasses.replace(limits, **changes)
    _duckdb()  # a missing extra is named here, in the caller's process, not as the child's failure
    if not shards:
        raise TaliSourceError("no shards to filter")
    request = {
        "shards": [str(s) for s in shards],
        "where": where,
        "columns": None if columns is None else list(columns),
        "limit": limit,
        "offset": int(offset),
    }
    return run_bounded(request, metrics, limits)


def explain_where(
    shards: Sequence[str],
    where: str | None,
    *,
    metrics: MetricsLike = None,
    limits: SandboxLimits | None = None,
) -> str:
    """DuckDB's physical plan for ``SELECT item_idx, shard, row FROM rows WHERE (where)``,
    checked and planned in the bounded child like :func:`evaluate_where` (planning folds
    constant sub-expressions, so a plan can cost what a run costs)."""
    from tali.sql.bounded import run_bounded

    _duckdb()
    if not shards:
        raise TaliSourceError("no shards to filter")
    request = {"shards": [str(s) for s in shards], "where": where, "explain": True}
    table = run_bounded(request, metrics, limits or SandboxLimits())
    return "\n".join(table.column("plan").to_pylist())


def plan_in_process(
    shards: Sequence[str],
    where: str | None,
    *,
    metrics: MetricsLike = None,
    limits: SandboxLimits = SandboxLimits(),
) -> pa.Table:
    """:func:`explain_where` without the child process (what the child runs): one
    ``plan`` column of the plan's lines."""
    con = sandboxed_connection(shards, metrics, memory_limit=limits.memory_limit, threads=limits.threads)
    try:
        clause = f" WHERE ({check_where(con, where)}\n)" if where and where.strip() else ""
        query = f"SELECT item_idx, shard, row FROM rows{clause}"
        with _limited(con, limits, "planning the WHERE clause"):
            lines = [str(r[1]) for r in con.sql(f"EXPLAIN {query}").fetchall()]
        return pa.table({"plan": pa.array(lines, pa.string())})
    finally:
        con.close()


def evaluate_in_process(
    shards: Sequence[str],
    where: str | None,
    *,
    metrics: MetricsLike = None,
    columns: Sequence[str] | None = ("item_idx", "shard", "shard_path", "row"),
    limit: int | None = None,
    offset: int = 0,
    limits: SandboxLimits = SandboxLimits(),
) -> pa.Table:
    """:func:`evaluate_where` without the child process (what the child runs)."""
    con = sandboxed_connection(shards, metrics, memory_limit=limits.memory_limit, threads=limits.threads)
    try:
        clause = f" WHERE ({check_where(con, where)}\n)" if where and where.strip() else ""
        available = [d[0] for d in con.execute("SELECT * FROM rows LIMIT 0").description]
        unknown = [c for c in columns or () if c not in available]
        if unknown:
            raise TaliConfigError(f"no such columns {unknown}; rows has {available}")
        names = "*" if columns is None else ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
        page = ""
        if limit is not None:
            page = f" LIMIT {int(limit)} OFFSET {int(offset)}"
        query = f"SELECT {names} FROM rows{clause} ORDER BY shard_path, row{page}"
        with _limited(con, limits, "the WHERE clause"):
            return _bounded_result(con.sql(query), limits.max_result_bytes)
    finally:
        con.close()


def _bounded_result(relation: Any, max_bytes: int) -> pa.Table:
    """The result a batch at a time, refused as soon as it passes ``max_bytes``."""
    reader = relation.to_arrow_reader(batch_size=8192)
    batches, size = [], 0
    for batch in reader:
        size += batch.nbytes
        if size > max_bytes:
            raise TaliQueryLimitError(
                f"the WHERE clause's result is over {max_bytes} bytes (the result limit); "
                "ask for fewer columns or rows"
            )
        batches.append(batch)
    return pa.Table.from_batches(batches, schema=reader.schema)
