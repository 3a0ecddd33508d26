"""Run one sandboxed evaluation in a child process that cannot outgrow its limits.

The child (``python -m tali.sql.bounded``) sets ``RLIMIT_AS`` on itself before
importing DuckDB, reads its request (JSON, then an optional Arrow IPC metrics
table) from stdin, evaluates in process (:func:`tali.sql.sandbox.evaluate_in_process`)
and writes the result as an Arrow IPC stream to stdout, or one JSON error line to
stderr. The parent kills it at ``timeout_seconds`` and stops reading past
``max_result_bytes``: whatever the clause does inside DuckDB, this process's
memory and time stay bounded, and every way of failing is a typed error.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa

import tali
from tali.errors import TaliConfigError, TaliError, TaliQueryLimitError, TaliSourceError

__all__ = ["run_bounded"]

_ERRORS: dict[str, type[TaliError]] = {
    "TaliConfigError": TaliConfigError,
    "TaliQueryLimitError": TaliQueryLimitError,
    "TaliSourceError": TaliSourceError,
}
#: Bytes of the child's stderr kept (its error line; DuckDB's messages are short).
_MAX_STDERR = 64 << 10


def _read_limited(stream: Any, limit: int, out: list[bytes], over: threading.Event) -> None:
    total = 0
    while chunk := stream.read(1 << 16):
        total += len(chunk)
        if total > limit:
            over.set()
            return
        out.append(chunk)


def run_bounded(request: dict[str, Any], metrics: Any, limits: Any) -> pa.Table:
    """Evaluate ``request`` (shards, where, columns, limit, offset; or ``explain``: the
    plan) in a bounded child."""
    with tempfile.TemporaryDirectory(prefix="tali-sql-") as tmp:
        if isinstance(metrics, pa.Table):
            path = Path(tmp) / "metrics.arrow"
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, metrics.schema) as writer:
                writer.write_table(metrics)
            request = {**request, "metrics_ipc": str(path)}
        elif metrics is not None:
            request = {**request, "metrics": os.fspath(metrics)}
        request["limits"] = {
            "memory_limit": limits.memory_limit,
            "threads": limits.threads,
            "max_process_bytes": limits.max_process_bytes,
            "timeout_seconds": limits.timeout_seconds,
            "max_result_bytes": limits.max_result_bytes,
        }
        env = dict(os.environ)
        root = str(Path(tali.__file__).resolve().parents[1])  # this tali, not another install
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tali.sql.bounded"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        out: list[bytes] = []
        err: list[bytes] = []
        over, err_over = threading.Event(), threading.Event()
        readers = [
            threading.Thread(
                target=_read_limited, args=(proc.stdout, limits.max_result_bytes * 2, out, over)
            ),
            threading.Thread(target=_read_limited, args=(proc.stderr, _MAX_STDERR, err, err_over)),
        ]
        for reader in readers:
            reader.daemon = True
            reader.start()
        try:
            proc.stdin.write(json.dumps(request).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        timed_out = False
        try:
            proc.wait(timeout=limits.timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
        if timed_out or over.is_set():
            proc.kill()
            proc.wait()
        for reader in readers:
            reader.join(timeout=5)
        if timed_out:
            raise TaliQueryLimitError(
                f"the WHERE clause ran longer than {limits.timeout_seconds} s and was stopped"
            )
        if over.is_set():
            raise TaliQueryLimitError(
                f"the WHERE clause's result is over {limits.max_result_bytes} bytes (the result limit)"
            )
        message = b"".join(err).decode("utf-8", "replace").strip().splitlines()
        if proc.returncode != 0:
            for line in reversed(message):
                try:
                    blob = json.loads(line)
                except ValueError:
                    continue
                if isinstance(blob, dict) and blob.get("type") in _ERRORS:
                    raise _ERRORS[blob["type"]](str(blob.get("message")))
            # Killed (SIGKILL, SIGSEGV) or aborted by a failed allocation (std::bad_alloc).
            raise TaliQueryLimitError(
                f"the WHERE clause needed more than the sandbox's {limits.max_process_bytes} bytes "
                f"of memory and was stopped (exit {proc.returncode})"
            )
        with pa.ipc.open_stream(pa.py_buffer(b"".join(out))) as stream:
            return stream.read_all()


def _main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    bounds = request["limits"]
    size = int(bounds["max_process_bytes"])
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        size = min(size, hard)  # a parent already capped lower keeps its cap
    resource.setrlimit(resource.RLIMIT_AS, (size, size))
    try:
        # The parent checked that duckdb is installed: failing to import it here is the
        # address-space cap (its shared library is mapped at import), not a missing extra.
        import duckdb  # noqa: F401
    except (ImportError, MemoryError) as exc:
        sys.stderr.write(
            json.dumps(
                {
                    "type": "TaliQueryLimitError",
                    "message": f"the sandbox's {size} bytes of memory are too few to start DuckDB ({exc})",
                }
            )
            + "\n"
        )
        return 1
    try:
        from tali.sql.sandbox import SandboxLimits, evaluate_in_process, plan_in_process

        metrics: Any = request.get("metrics")
        if request.get("metrics_ipc"):
            with pa.memory_map(request["metrics_ipc"]) as source:
                metrics = pa.ipc.open_file(source).read_all()
        if request.get("explain"):
            table = plan_in_process(
                request["shards"], request["where"], metrics=metrics, limits=SandboxLimits(**bounds)
            )
        else:
            table = evaluate_in_process(
                request["shards"],
                request["where"],
                metrics=metrics,
                columns=request["columns"],
                limit=request["limit"],
                offset=request["offset"],
                limits=SandboxLimits(**bounds),
            )
        with pa.ipc.new_stream(sys.stdout.buffer, table.schema) as writer:
            writer.write_table(table)
        sys.stdout.buffer.flush()
    except TaliError as exc:
        kind = type(exc).__name__
        kind = (
            kind
            if kind in _ERRORS
            else ("TaliConfigError" if isinstance(exc, TaliConfigError) else "TaliSourceError")
        )
        sys.stderr.write(json.dumps({"type": kind, "message": str(exc)}) + "\n")
        return 1
    except MemoryError:
        sys.stderr.write(
            json.dumps(
                {
                    "type": "TaliQueryLimitError",
                    "message": (
                        f"the WHERE clause needed more than the sandbox's {size} bytes of memory and was stopped"
                    ),
                }
            )
            + "\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
