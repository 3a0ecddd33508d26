"""Resampling a window to 16 kHz mono: swresample (through PyAV's filter graph, a new
one per window as the audio decoder needs) against ``tali.decode.resample.Polyphase``
(swresample's filter as one matrix product), on the same samples.

Calls alternate; per-call CPU time (one torch thread, as in a DataLoader worker);
``speedup`` is the median of per-pair ratios. Prints JSON.

    python benchmarks/decode/bench_resample.py [--repeats 41] [--out results.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import emit, machine
from tali.decode.resample import polyphase, swr_resample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    results = []
    for in_rate in (44_100, 48_000):
        start = time.process_time()
        resampler = polyphase(in_rate, 16_000)
        build_ms = 1e3 * (time.process_time() - start)
        for seconds in (3.1, 30.0):  # a 3 s window with its 0.1 s pre-roll; a whole clip
            x = (0.2 * rng.standard_normal(int(in_rate * seconds))).astype(np.float32)
            swr_ms, poly_ms = [], []
            for _ in range(args.repeats):
                t = time.process_time()
                swr_resample(x, in_rate, 16_000)
                swr_ms.append(1e3 * (time.process_time() - t))
                t = time.process_time()
                resampler(x)
                poly_ms.append(1e3 * (time.process_time() - t))
            results.append(
                {
                    "in_rate": in_rate,
                    "seconds": seconds,
                    "swresample_ms": round(statistics.median(swr_ms), 3),
                    "polyphase_ms": round(statistics.median(poly_ms), 3),
                    "speedup": round(
                        statistics.median(s / p for s, p in zip(swr_ms, poly_ms, strict=True)), 2
                    ),
                    "polyphase_build_ms_once_per_process": round(build_ms, 1),
                }
            )
    emit(
        {"benchmark": "resample", "machine": machine(), "repeats": args.repeats, "results": results}, args.out
    )


if __name__ == "__main__":
    main()
