"""Data-quality throughput on the sample dataset; prints JSON.

    PYTHONPATH=src python benchmarks/quality/bench_quality.py [--repeats 3] [--out result.json]

- ``scan``: seconds per 30 s 640x360 clip for a decode-only pass (what validation
  does), the metrics pass (Y-plane thumbnails), and a reference metrics pass that
  thumbnails each frame with swscale (the first implementation) — ratios are
  measured in the same run.
- ``validate`` / ``metrics``: rows/s over every sample row, 1 worker.
- ``filter``: a SQL predicate over metadata + metrics in DuckDB vs reading the
  full rows (video bytes included, as a row-wise ``filter`` over decoded rows
  would) with pyarrow and filtering in Python, over ``--copies`` links to the
  train shards (the 16-row sample alone is too small to show anything).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq

from tali import sample_data
from tali.decode.clip import open_clip
from tali.quality import MetricsOptions, compute_metrics, select, validate
from tali.quality.scan import THUMB_WIDTH, scan_clip


def _timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _swscale_reference(data: bytes) -> None:
    """The metrics video pass as first written: swscale each frame to a 64-wide grey image."""
    with open_clip(data) as clip:
        prev = None
        for frame in clip.container.decode(clip.video):
            grey = frame.reformat(width=THUMB_WIDTH, height=36, format="gray").to_ndarray().astype(np.int16)
            if prev is not None:
                np.abs(grey - prev).mean()
            prev = grey


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--copies", type=int, default=16, help="links to the train shards for the filter test"
    )
    args = parser.parse_args()
    root = sample_data.build()
    clip = (
        pq.read_table(root / "data" / "val-00000-of-00001.parquet", columns=["youtube_video_content"])
        .column(0)[1]
        .as_py()
    )

    def decode_only() -> None:
        with open_clip(clip) as c:
            scan_clip(c, stats=False)

    def metrics_pass() -> None:
        with open_clip(clip) as c:
            scan_clip(c, stats=True)

    scan = {
        "decode_only": _summary(_timed(decode_only, args.repeats)),
        "metrics_pass": _summary(_timed(metrics_pass, args.repeats)),
        "swscale_reference": _summary(_timed(lambda: _swscale_reference(clip), args.repeats)),
    }
    scan["metrics_over_decode_ratio"] = scan["metrics_pass"]["median_s"] / scan["decode_only"]["median_s"]
    scan["swscale_over_metrics_ratio"] = (
        scan["swscale_reference"]["median_s"] / scan["metrics_pass"]["median_s"]
    )

    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in (root / "data").glob("*.parquet"))
    validate_s = _timed(lambda: validate(root), 1)
    with tempfile.TemporaryDirectory() as tmp:
        metrics_file = Path(tmp) / "m.parquet"
        metrics_s = _timed(lambda: compute_metrics(root, out=metrics_file, options=MetricsOptions()), 1)
        big = Path(tmp) / "big" / "data"
        big.mkdir(parents=True)
        train = sorted((root / "data").glob("train-*.parquet"))
        total = len(train) * args.copies
        for k in range(total):
            (big / f"train-{k:05d}-of-{total:05d}.parquet").symlink_to(train[k % len(train)])
        big_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in big.iterdir())
        big_bytes = sum(p.stat().st_size for p in big.iterdir())
        where = "audio_silence_ratio < 0.5 AND frozen_frame_ratio < 0.1 AND list_contains(languages, 'en')"
        duck = _timed(
            lambda: select(big.parent, split="train", metrics=metrics_file, where=where), args.repeats
        )
        metrics_rows = {r["item_idx"]: r for r in pq.read_table(metrics_file).to_pylist()}

        def naive() -> list[int]:
            table = pq.read_table(sorted(str(p) for p in big.iterdir()))
            keep = []
            for row in table.to_pylist():  # every column, video bytes included
                m = metrics_rows[row["item_idx"]]
                if (
                    (m["audio_silence_ratio"] or 1) < 0.5
                    and m["frozen_frame_ratio"] < 0.1
                    and "en" in m["languages"]
                ):
                    keep.append(row["item_idx"])
            return keep

        naive_s = _timed(naive, args.repeats)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "av": av.__version__,
            "load_avg_1m": os.getloadavg()[0],
        },
        "scan_per_30s_clip_640x360": scan,
        "validate_rows_per_s_1_worker": rows / statistics.median(validate_s),
        "metrics_rows_per_s_1_worker": rows / statistics.median(metrics_s),
        "filter": {
            "rows": big_rows,
            "shard_bytes": big_bytes,
            "duckdb_sql_metadata_plus_metrics": _summary(duck),
            "pyarrow_full_rows_reference": _summary(naive_s),
            "reference_over_duckdb_ratio": statistics.median(naive_s) / statistics.median(duck),
        },
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
