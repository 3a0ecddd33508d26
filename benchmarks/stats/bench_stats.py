"""``tali stats`` throughput on the sample dataset replicated by symlinks; prints JSON.

    PYTHONPATH=src python benchmarks/stats/bench_stats.py [--shards 128 512] [--repeats 3] [--out r.json]

- ``describe``: rows/s of ``tali.stats.describe`` (metadata only) over ``--shards``
  symlinks to the train shards (8 rows each), median of ``--repeats`` after a warm-up.
  ``seconds = fixed + rows / rate`` is fitted through the two largest sizes and
  extrapolated to TALI's 1.17 M rows (``extrapolated_1_17M_rows_s``).
- ``subtitle_count``: the lexical subtitle count inside DuckDB vs the reference that
  parses every subtitle YAML in Python (``tali.decode.subtitles.parse_subtitles``, the
  row-by-row way), over the same rows in the same run: the measured reason for the regex.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import emit, machine
from tali import sample_data
from tali.decode.subtitles import parse_subtitles
from tali.stats import StatsOptions, describe
from tali.stats.sql import SUBTITLE_KEY, connect, quote

TALI_ROWS = 1_170_000


def replicate(root: Path, target: Path, shards: int) -> Path:
    """``target/data/train-*.parquet``: ``shards`` symlinks cycling over the sample's train shards."""
    sources = sorted((root / "data").glob("train-*.parquet"))
    (target / "data").mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        link = target / "data" / f"train-{i:05d}-of-{shards:05d}.parquet"
        if not link.exists():
            os.symlink(sources[i % len(sources)], link)
    return target


def _median_seconds(fn, repeats: int, warmup: bool = True) -> tuple[float, list[float]]:
    if warmup:
        fn()  # page cache, DuckDB start-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def bench_describe(
    root: Path, work: Path, sizes: list[int], repeats: int, threads: int | None, warmup: bool = True
) -> dict:
    out: dict = {"sizes": []}
    for shards in sizes:
        source = replicate(root, work / f"x{shards}", shards)
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in (source / "data").glob("*.parquet"))
        opts = StatsOptions(threads=threads)
        median, times = _median_seconds(
            lambda s=source, o=opts: describe(s, split="train", options=o), repeats
        )
        out["sizes"].append(
            {"shards": shards, "rows": rows, "median_s": median, "runs_s": times, "rows_per_s": rows / median}
        )
    a, b = out["sizes"][-2:] if len(out["sizes"]) >= 2 else (None, out["sizes"][-1])
    if a is not None and b["rows"] > a["rows"]:
        per_row = (b["median_s"] - a["median_s"]) / (b["rows"] - a["rows"])
        fixed = b["median_s"] - per_row * b["rows"]
    else:
        per_row, fixed = b["median_s"] / b["rows"], 0.0
    out["fit"] = {
        "fixed_s": fixed,
        "per_row_us": per_row * 1e6,
        "marginal_rows_per_s": 1 / max(per_row, 1e-12),
    }
    out["extrapolated_1_17M_rows_s"] = fixed + per_row * TALI_ROWS
    return out


def bench_subtitle_count(root: Path, work: Path, shards: int, repeats: int) -> dict:
    source = replicate(root, work / f"x{shards}", shards)
    files = sorted(str(p) for p in (source / "data").glob("*.parquet"))
    listing = "[" + ", ".join(quote(f) for f in files) + "]"

    def in_duckdb() -> int:
        con = connect(1)  # one thread: the same resources as the Python reference
        sql = (
            f"SELECT sum(len(regexp_extract_all(coalesce(youtube_subtitle_text, ''), {quote(SUBTITLE_KEY)}, 1))) "
            f"FROM read_parquet({listing})"
        )
        return int(con.execute(sql).fetchone()[0])

    def in_python() -> int:
        total = 0
        for path in files:
            column = pq.read_table(path, columns=["youtube_subtitle_text"]).column(0).to_pylist()
            total += sum(len(parse_subtitles(text)) for text in column)
        return total

    lexical, reference = in_duckdb(), in_python()
    fast, _ = _median_seconds(in_duckdb, repeats)
    slow, _ = _median_seconds(in_python, repeats)
    return {
        "shards": shards,
        "lines": lexical,
        "counts_equal": lexical == reference,
        "duckdb_regex_1_thread_s": fast,
        "python_yaml_s": slow,
        "speedup": slow / fast,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if min(args.shards) < 100:
        parser.error("--shards: replicate to at least 100 shards")
    root = sample_data.build()
    with tempfile.TemporaryDirectory(prefix="tali-bench-stats-") as tmp:
        work = Path(tmp)
        result = {
            "machine": machine(),
            "describe": bench_describe(root, work, sorted(args.shards), args.repeats, args.threads),
            "subtitle_count": bench_subtitle_count(root, work, min(args.shards), args.repeats),
        }
    emit(result, args.out)


if __name__ == "__main__":
    main()
