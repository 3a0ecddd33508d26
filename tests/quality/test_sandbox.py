"""`--where` is a sandbox: planted file reads, UNION injections, extra statements and media-byte
access are refused or cannot reach anything, and legitimate predicates still work."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tali.cli.main import main
from tali.data.sources import resolve_local_files
from tali.errors import TaliConfigError, TaliError
from tali.quality import select
from tali.sql.sandbox import check_where, evaluate_where, sandboxed_connection


@pytest.fixture(scope="module")
def val_shards(sample_root):
    return resolve_local_files(sample_root, "val")


@pytest.fixture()
def secret(tmp_path):
    path = tmp_path / "secret.csv"
    path.write_text("name\nTOPSECRET-42\n")
    return path


ATTACKS = {
    "subquery over read_csv": "item_idx IN (SELECT 1 FROM read_csv('{secret}'))",
    "scalar subquery leaks a file": "youtube_title_text <> (SELECT name FROM read_csv('{secret}'))",
    "exists over /etc/passwd": "EXISTS (SELECT * FROM read_csv('/etc/passwd'))",
    "read_text": "length((SELECT content FROM read_text('{secret}'))) > 0",
    "glob": "(SELECT count(*) FROM glob('/etc/*')) > 0",
    "media bytes of the shard": "(SELECT length(youtube_video_content) FROM read_parquet('{shard}') LIMIT 1) > 0",
    "union of fabricated ids": "true) UNION ALL SELECT * FROM rows WHERE (false",
    "union with a literal row": "true) UNION SELECT 999999, NULL WHERE (true",
    "second statement": "true); COPY (SELECT 1) TO '{out}'; SELECT (1",
    "attach": "true); ATTACH '{out}' AS x; SELECT (1",
    "settings": "current_setting('allowed_paths') IS NOT NULL",
    "unbounded output": "length(repeat(youtube_title_text, 1000000000)) > 0",
    "window": "row_number() OVER () > 0",
    "aggregate": "count(*) > 0",
    "parameter": "item_idx = $1",
    "columns star": "COLUMNS(*) IS NOT NULL",
    "not boolean": "item_idx + 1",
    "comment out the paren": "true /* ",
    "table function as scalar": "read_csv('{secret}') IS NOT NULL",
    "qualified function": "main.lower(youtube_title_text) = ''",
    "with clause": "true) AND item_idx IN (WITH x AS (SELECT 1) SELECT * FROM x) AND (true",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_planted_attacks_are_refused_and_touch_nothing(name, val_shards, secret, tmp_path):
    out = tmp_path / "leak.csv"
    clause = ATTACKS[name].format(secret=secret, shard=val_shards[0], out=out)
    with pytest.raises(TaliConfigError, match="WHERE clause") as err:
        select(val_shards, where=clause)
    assert "TOPSECRET" not in str(err.value)
    assert not out.exists()


def test_the_connection_itself_cannot_reach_files(val_shards, secret, tmp_path):
    """Layer 2 on its own: even SQL that skips the clause check cannot leave the shards."""
    con = sandboxed_connection(val_shards)
    try:
        for sql in (
            f"SELECT * FROM read_csv('{secret}')",
            "SELECT * FROM read_csv('/etc/passwd')",
            f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'",
            f"ATTACH '{tmp_path / 'x.db'}'",
            "INSTALL httpfs",
        ):
            with pytest.raises(duckdb.PermissionException, match="disabled by configuration"):
                con.execute(sql)
        with pytest.raises(duckdb.InvalidInputException, match="locked"):
            con.execute("SET enable_external_access = true")
        assert con.execute("SELECT count(*) FROM rows").fetchone()[0] == 4
        names = [d[0] for d in con.execute("SELECT * FROM rows LIMIT 0").description]
        assert "youtube_video_content" not in names and "image" not in names
    finally:
        con.close()
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.db").exists()


def test_cli_union_injection_writes_no_index(sample_root, tmp_path, capsys):
    index = tmp_path / "keep.json"
    code = main(
        [
            "filter",
            str(sample_root),
            "--split",
            "val",
            "--where",
            "true) UNION ALL SELECT 424242 AS item_idx, * EXCLUDE (item_idx) FROM rows WHERE (true",
            "--index",
            str(index),
        ]
    )
    assert code == 1 and not index.exists()
    assert "single boolean expression" in capsys.readouterr().err
    # the same command with an honest clause writes the index
    assert (
        main(["filter", str(sample_root), "--split", "val", "--where", "row = 0", "--index", str(index)]) == 0
    )
    assert json.loads(index.read_text())["item_ids"] == [16]


def test_real_predicates_still_work(val_shards, truth):
    clauses = {
        "item_idx % 2 = 0 AND youtube_title_text IS NOT NULL": lambda t: t["item_idx"] % 2 == 0,
        "list_contains(wit_features.language, 'ja')": lambda t: "ja" in t["languages"],
        "len(list_filter(wit_features.language, lambda x: x = 'en')) > 0": lambda t: "en" in t["languages"],
        "CASE WHEN row < 2 THEN true ELSE false END": lambda t: t["item_idx"] in (16, 17),
        "item_idx BETWEEN 17 AND 18 AND shard LIKE 'val-%'": lambda t: t["item_idx"] in (17, 18),
        "lower(youtube_title_text) LIKE '%' || CAST(item_idx AS VARCHAR) || '%' OR true": lambda t: True,
    }
    for clause, keep in clauses.items():
        got = evaluate_where(val_shards, clause).column("item_idx").to_pylist()
        want = sorted(i for i, t in truth.items() if t["split"] == "val" and keep({**t, "item_idx": i}))
        assert got == want, clause
    page = evaluate_where(val_shards, None, columns=("item_idx", "row"), limit=2, offset=1)
    assert page.to_pylist() == [{"item_idx": 17, "row": 1}, {"item_idx": 18, "row": 2}]
    with pytest.raises(TaliConfigError, match="no such columns"):
        evaluate_where(val_shards, None, columns=("youtube_video_content",))


_FRAGMENTS = st.sampled_from(
    [
        "item_idx",
        "row",
        "youtube_title_text",
        "1",
        "'x'",
        "(",
        ")",
        " AND ",
        " OR ",
        " = ",
        " > ",
        ";",
        " UNION ",
        " SELECT ",
        " FROM ",
        "read_csv('/etc/passwd')",
        "rows",
        "--",
        "/*",
        "*/",
        "*",
        "NOT ",
        "list_contains(",
        ",",
        "CAST(",
        " AS ",
        "INT",
        " IN ",
        "true",
        "NULL",
        "read_parquet(",
        "'/tmp'",
        "COPY ",
        "$$",
        '"',
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_FRAGMENTS, min_size=1, max_size=12).map("".join))
def test_fuzzed_clauses_fail_typed_or_return_rows_of_the_split(val_con, val_shards, clause):
    """Whatever text comes in: a TaliConfigError, or a boolean clause that binds over ``rows``."""
    try:
        check_where(val_con, clause)
    except TaliError:
        return
    try:
        keep = val_con.execute(f"SELECT count(*) FROM rows WHERE ({clause}\n)").fetchone()[0]
    except duckdb.ConversionException:
        # A value that only fails when cast at run time ('/tmp' as BOOL): the public
        # entry point turns it into a typed error too.
        with pytest.raises(TaliConfigError, match="ConversionException"):
            evaluate_where(val_shards, clause)
        return
    assert 0 <= keep <= 4


@pytest.fixture(scope="module")
def val_con(val_shards):
    con = sandboxed_connection(val_shards)
    yield con
    con.close()


def test_metrics_file_is_the_only_extra_path(val_shards, sample_root, tmp_path):
    table = pq.read_table(val_shards[0], columns=["item_idx"]).append_column("shard", [["s"] * 4])
    table = table.append_column("row", [[0, 1, 2, 3]]).append_column("score", [[0.1, 0.9, 0.5, 0.7]])
    path = tmp_path / "m.parquet"
    pq.write_table(table, path)
    assert evaluate_where(val_shards, "score > 0.6", metrics=path).column("item_idx").to_pylist() == [17, 19]
    with pytest.raises(TaliConfigError, match="subqueries"):
        evaluate_where(val_shards, f"score > (SELECT max(score) FROM read_parquet('{path}'))", metrics=path)


# --- Bounded cost (issue 24 item 9). Each bomb runs in a child python whose own address
# space is capped (RLIMIT_AS), so even the unfixed code cannot eat the shared machine: it
# then fails these tests by returning rows, an untyped error, or the time bound.
_BOUNDED_RUNNER = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from tali.sql.sandbox import evaluate_where
t0 = time.monotonic()
try:
    table = evaluate_where({shards!r}, {clause!r}, timeout_seconds={timeout!r})
    out = {{"rows": table.num_rows}}
except Exception as exc:
    out = {{"error": type(exc).__name__, "message": str(exc)[:300]}}
out["seconds"] = time.monotonic() - t0
# VmHWM, not RUSAGE_SELF: after exec, ru_maxrss still holds the forking parent's peak (pytest's).
hwm = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
out["peak_rss_bytes"] = max(hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) * 1024
print(json.dumps(out))
"""


def _run_bounded(shards, clause, *, timeout=600.0):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import tali

    script = _BOUNDED_RUNNER.format(
        cap=5 << 30, shards=[str(s) for s in shards], clause=clause, timeout=timeout
    )
    env = {**os.environ, "PYTHONPATH": str(Path(tali.__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def long_text_shard(tmp_path_factory):
    """64 rows whose description is 20,000 characters: quadratic clauses cost 4e8 per row."""
    path = tmp_path_factory.mktemp("long-text") / "val-00000-of-00001.parquet"
    text = "ab" * 10_000
    pq.write_table(pa.table({"item_idx": list(range(64)), "youtube_description_text": [text] * 64}), path)
    return [str(path)]


BOMBS = {
    # 1 GB string per row: 7.7 GB in-process before (issue 24), past a 256 MB memory_limit.
    "printf width": "length(printf('%1000000000d', 1)) > 0",
    "format width": "length(format('{:>1000000000}', 1)) > 0",
    # a || a doubled per element: 2^32 bytes.
    "concatenation doubling": "length(list_reduce(["
    + ", ".join(["'ab'"] * 33)
    + "], lambda a, x: a || a)) > 0",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_output_size_bombs_are_refused_before_running(name, val_shards):
    got = _run_bounded(val_shards, BOMBS[name])
    assert got.get("error") == "TaliConfigError", got
    assert "is not allowed" in got["message"]
    assert got["seconds"] < 20 and got["peak_rss_bytes"] < 1 << 30, got


def test_an_unlisted_memory_bomb_is_stopped_by_the_process_limit(long_text_shard):
    """Nothing refuses this clause by name: 20,000 copies of a 20 kB text per row (400 MB a row)."""
    clause = (
        "length(list_transform(string_split(youtube_description_text, ''), "
        "lambda x: youtube_description_text)) > 0"
    )
    got = _run_bounded(long_text_shard, clause)
    assert got.get("error") == "TaliQueryLimitError", got
    assert "memory" in got["message"]
    assert got["seconds"] < 30 and got["peak_rss_bytes"] < 4 << 30, got


def test_an_unlisted_time_bomb_is_killed_at_its_time_limit(long_text_shard):
    """20,000 replaces of a 20 kB text per row: over 100 s measured; DuckDB's interrupt is only
    checked between vectors, so the child process is killed instead."""
    clause = (
        "list_sum(list_transform(string_split(youtube_description_text, ''), "
        "lambda x: length(replace(youtube_description_text, x, 'qq')))) > 0"
    )
    got = _run_bounded(long_text_shard, clause, timeout=2.0)
    assert got.get("error") == "TaliQueryLimitError", got
    assert "longer than 2.0 s" in got["message"]
    assert got["seconds"] < 15, got


def test_a_result_past_its_size_is_refused(val_shards):
    from tali.sql import SandboxLimits

    with pytest.raises(TaliConfigError, match="result limit"):
        evaluate_where(val_shards, None, columns=None, limits=SandboxLimits(max_result_bytes=1000))
    assert evaluate_where(val_shards, None, limits=SandboxLimits(max_result_bytes=1 << 20)).num_rows == 4


_EXPLAIN_RUNNER = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from tali.quality.filter import explain
t0 = time.monotonic()
try:
    out = {{"plan": explain({root!r}, split="val", where={clause!r})}}
except Exception as exc:
    out = {{"error": type(exc).__name__, "message": str(exc)[:300]}}
out["seconds"] = time.monotonic() - t0
out["peak_rss_bytes"] = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) * 1024
print(json.dumps(out))
"""


def test_explain_plans_in_the_bounded_child(sample_root):
    """Planning folds constants, so ``EXPLAIN`` runs a constant clause: this unlisted one (no
    refused function; lists of lists of a 1 kB literal) cost 2.9 GB and 6.7 s in the caller's
    process when ``explain`` planned in-process (issue 24 item 9). Now the caller stays small
    and the plan (or a typed limit error) comes from the bounded child."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import tali

    text = "ab" * 500
    clause = (
        f"length(list_transform(string_split('{text}', ''), "
        f"lambda x: list_transform(string_split('{text}', ''), lambda y: '{text}'))) > 0"
    )
    script = _EXPLAIN_RUNNER.format(cap=5 << 30, root=str(sample_root), clause=clause)
    env = {**os.environ, "PYTHONPATH": str(Path(tali.__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert "READ_PARQUET" in got.get("plan", "") or got.get("error") == "TaliQueryLimitError", got
    assert got["peak_rss_bytes"] < 1 << 30, got


def test_explain_honours_the_sandbox_limits(sample_root):
    from tali.quality.filter import explain
    from tali.sql import SandboxLimits

    with pytest.raises(TaliConfigError, match="is not allowed"):
        explain(sample_root, split="val", where="length(printf('%1000000000d', 1)) > 0")
    with pytest.raises(TaliConfigError, match="memory"):  # the child cannot even start DuckDB in 64 MB
        explain(sample_root, split="val", where="true", limits=SandboxLimits(max_process_bytes=64 << 20))
