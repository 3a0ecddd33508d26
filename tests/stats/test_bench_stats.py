"""The stats benchmark runs on >= 100 symlinked shards (timings are not asserted; the
subtitle-count section's equality with the YAML parser is tested in test_stats.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "stats" / "bench_stats.py"


def test_benchmark_sections_run(sample_root, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_stats", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.bench_describe(sample_root, tmp_path, [100], repeats=1, threads=None, warmup=False)
    (size,) = out["sizes"]
    assert size["shards"] == 100 and size["rows"] == 800 and size["rows_per_s"] > 0
    assert out["extrapolated_1_17M_rows_s"] > 0
