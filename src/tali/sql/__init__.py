"""SQL over a dataset's metadata for untrusted text: the sandboxed DuckDB behind ``--where``,
the viewer's search and ``tali stats`` (see :mod:`tali.sql.sandbox`)."""

from tali.sql.sandbox import (
    METADATA_EXCLUDED,
    MetricsLike,
    SandboxLimits,
    TaliQueryLimitError,
    check_where,
    evaluate_where,
    explain_where,
    sandboxed_connection,
    sql_string,
)

__all__ = [
    "METADATA_EXCLUDED",
    "MetricsLike",
    "SandboxLimits",
    "TaliQueryLimitError",
    "check_where",
    "evaluate_where",
    "explain_where",
    "sandboxed_connection",
    "sql_string",
]
