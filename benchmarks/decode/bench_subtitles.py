"""Subtitle YAML: the one-line fast path vs libyaml's event reader. Prints JSON.

    PYTHONPATH=src python benchmarks/decode/bench_subtitles.py --out benchmarks/results/subtitles.json

Every non-empty subtitle document of the sample dataset, parsed both ways in turns
(wall time of this process, median of rounds); ``between`` is the loader's call (only
a 3 s window's lines built).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import emit
from tali import sample_data
from tali.decode.subtitles import parse_subtitles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    root = sample_data.build()
    docs = [
        row["youtube_subtitle_text"]
        for path in sorted((root / "data").glob("*.parquet"))
        for row in pq.read_table(path, columns=["youtube_subtitle_text"]).to_pylist()
        if row["youtube_subtitle_text"]
    ]
    methods = {
        "event reader": lambda text: parse_subtitles(text, fast_path=False),
        "fast path, every line": parse_subtitles,
        "fast path, a 3 s window's lines (the loader)": lambda text: parse_subtitles(
            text, between=(10.0, 13.0)
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, parse in methods.items():
            start = time.perf_counter()
            for text in docs:
                parse(text)
            times[name].append((time.perf_counter() - start) / len(docs))
    reference = statistics.median(times["event reader"])
    emit(
        {
            "documents": len(docs),
            "mean_bytes": sum(len(d) for d in docs) / len(docs),
            **{
                name: {
                    "ms_per_document": 1e3 * statistics.median(t),
                    "speedup_vs_event_reader": reference / statistics.median(t),
                }
                for name, t in times.items()
            },
        },
        args.out,
    )


if __name__ == "__main__":
    main()
