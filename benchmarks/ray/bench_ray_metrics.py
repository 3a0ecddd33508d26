"""`tali metrics` on Ray with 1 vs 2 CPUs, and against the local process pool. Prints JSON.

    PYTHONPATH=src python benchmarks/ray/bench_ray_metrics.py --repeats 3 --out benchmarks/results/ray.json

Every split of the sample dataset (24 rows in 4 shards: 8, 8, 4, 4) replicated
``--copies`` times (symlinks) so each CPU gets several shards. Wall time of the
whole job, cluster start excluded (a warm-up run first starts the workers);
medians of ``--repeats``. Runs alternate by repeat so machine load hits all alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import emit
from tali import sample_data
from tali.quality import compute_metrics


def _replicate(root: Path, target: Path, copies: int) -> Path:
    (target / "data").mkdir(parents=True)
    for k in range(copies):
        for shard in sorted((root / "data").glob("*.parquet")):
            (target / "data" / f"c{k}-{shard.name}").symlink_to(shard)
    return target


def _time(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    root = sample_data.build()
    with tempfile.TemporaryDirectory() as tmp:
        source = _replicate(root, Path(tmp) / "src", args.copies)
        rows = 24 * args.copies
        runs: dict[str, list[float]] = {"local_1": [], "local_pool_2": [], "ray_1cpu": [], "ray_2cpu": []}

        def local(workers: int) -> float:
            return _time(lambda: compute_metrics(source, workers=workers))

        def on_ray(cpus: int) -> float:
            env = {"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}}
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, runtime_env=env)
            try:
                compute_metrics(source, ray=True)  # warm-up: worker processes start
                return _time(lambda: compute_metrics(source, ray=True))
            finally:
                ray.shutdown()

        for _ in range(args.repeats):
            runs["local_1"].append(local(1))
            runs["local_pool_2"].append(local(2))
            runs["ray_1cpu"].append(on_ray(1))
            runs["ray_2cpu"].append(on_ray(2))
    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "rows": rows,
        "wall_seconds": runs,
        "median_seconds": med,
        "rows_per_second": {k: rows / v for k, v in med.items()},
        "ray_2_vs_1_cpu": med["ray_1cpu"] / med["ray_2cpu"],
        "ray_2cpu_overhead_vs_local_pool_2": med["ray_2cpu"] / med["local_pool_2"],
        "local_pool_2_vs_1": med["local_1"] / med["local_pool_2"],
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
