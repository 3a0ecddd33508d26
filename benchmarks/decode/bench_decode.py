"""Decode throughput of tali against the naive decoder and the PyAV floor (issue 2).

Same rows, same windows, same frame times for every method, measured in one
run. Prints JSON; medians of repeated passes over the train split.

    python benchmarks/decode/bench_decode.py [--repeats 5] [--out results.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import (
    emit,
    floor_decode,
    machine,
    naive_decode,
    peak_rss_increase_mb,
    plans,
    sample_rows,
    summary,
    time_alternating,
    time_per_pass,
)
from tali import AudioConfig, TaliConfig, TaliDataset, TaliTransform, WindowConfig, make_loader, sample_data

AV = ("youtube_content_video", "youtube_content_audio")
CONFIGS = {
    # The A/V part of the default config: 3 s window, 8 uniform frames at 224, 16 kHz mono.
    "default": TaliConfig(modalities=AV),
    "whole_clip": TaliConfig(modalities=AV, window=WindowConfig(seconds=30.0)),
    # Every sub-modality (images, texts, thumbnail, random frame too).
    "default_all_submodalities": TaliConfig(audio=AudioConfig(on_missing="zeros")),
}


def run_tali(name: str, *, prepare_only: bool = False, state=None):
    if prepare_only:
        rows = sample_rows()
        transform = TaliTransform(CONFIGS[name])
        transform(rows[0], key=0)
        return rows, transform
    rows, transform = state
    for key, row in enumerate(rows):
        transform(row, key=key)


def run_naive(name: str, *, prepare_only: bool = False, state=None):
    config = CONFIGS[name]
    if prepare_only:
        rows = sample_rows()
        windows = plans(rows, config)
        naive_decode(rows[0], windows[0], config.video.size or 224, config.audio.sample_rate)
        return rows, windows
    for row, plan in zip(*state):
        naive_decode(row, plan, config.video.size or 224, config.audio.sample_rate)


def run_floor(name: str, *, prepare_only: bool = False, state=None):
    if prepare_only:
        rows = sample_rows()
        windows = plans(rows, CONFIGS[name])
        floor_decode(rows[0], windows[0])
        return rows, windows
    for row, plan in zip(*state):
        floor_decode(row, plan)


def loader_rates(config: TaliConfig, workers: int, epochs: int, passes: int = 4) -> tuple[list[float], float]:
    """Samples/s through the real DataLoader path (parquet read included).

    Each epoch walks the 16-row split ``passes`` times, so worker start-up is
    a small part of it; the rate counts from the first batch (start-up is
    reported separately as time to first batch).
    """
    dataset = TaliDataset(
        sample_data.build(), split="train", config=config.replace(audio=AudioConfig(on_missing="zeros"))
    )
    order = [i % len(dataset) for i in range(len(dataset) * passes)]
    rates, first_batch = [], []
    for epoch in range(epochs + 1):
        dataset.set_epoch(epoch)
        start = time.perf_counter()
        n = 0
        for i, batch in enumerate(make_loader(dataset, batch_size=4, num_workers=workers, sampler=order)):
            if i == 0:
                first = time.perf_counter()
                first_batch.append(first - start)
            else:
                n += len(batch["item_idx"])
        if epoch:  # epoch 0 warms caches and imports
            rates.append(n / (time.perf_counter() - first))
    return rates, sorted(first_batch)[len(first_batch) // 2]


def measure(name: str, config: TaliConfig, rows: list, args: argparse.Namespace) -> dict:
    """Every measurement of one config: tali against the floor and naive, loaders, memory."""
    entry: dict = {"config": config.to_dict()}
    transform = TaliTransform(config)

    def tali_pass() -> int:
        return sum(1 for k, r in enumerate(rows) if transform(r, key=k))

    if name == "default_all_submodalities":
        entry["tali_single_process"] = summary(time_per_pass(tali_pass, args.repeats))
    else:
        windows = plans(rows, config)
        size, sr = config.video.size or 224, config.audio.sample_rate
        # tali and the floor in turns: the ratio is the median of per-pair ratios.
        rates = time_alternating(
            {
                "tali": tali_pass,
                "floor": lambda: sum(1 for r, p in zip(rows, windows) if floor_decode(r, p) >= 0),
            },
            args.repeats,
        )
        entry["tali_single_process"], entry["floor"] = summary(rates["tali"]), summary(rates["floor"])
        entry["naive"] = summary(
            time_per_pass(
                lambda: sum(1 for r, p in zip(rows, windows) if naive_decode(r, p, size, sr)),
                max(2, args.repeats // 2),
            )
        )
        tali_rate = entry["tali_single_process"]["samples_per_s_median"]
        entry["speedup_vs_naive"] = round(tali_rate / entry["naive"]["samples_per_s_median"], 2)
        entry["floor_over_tali"] = round(
            statistics.median(f / t for f, t in zip(rates["floor"], rates["tali"], strict=True)), 2
        )
    for workers in (0, 2):
        rates, ttfb = loader_rates(config, workers, args.epochs)
        entry[f"loader_{workers}_workers"] = {**summary(rates), "time_to_first_batch_s": round(ttfb, 3)}
    entry["workers_2_over_0"] = round(
        entry["loader_2_workers"]["samples_per_s_median"] / entry["loader_0_workers"]["samples_per_s_median"],
        2,
    )
    if not args.skip_memory and name != "default_all_submodalities":
        entry["peak_rss_increase_mb"] = {
            method: peak_rss_increase_mb(f"benchmarks.decode.bench_decode.run_{method}", name)
            for method in ("tali", "naive", "floor")
        }
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3, help="DataLoader epochs per worker count")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()

    rows = sample_rows()
    results = {name: measure(name, config, rows, args) for name, config in CONFIGS.items()}
    # Decoded size of the window's frames (yuv420p at 640x360), the yardstick for memory.
    frame_mb = 640 * 360 * 1.5 / 2**20
    emit(
        {
            "benchmark": "decode",
            "machine": machine(),
            "rows": len(rows),
            "decoded_frame_mb_360p": round(frame_mb, 3),
            "results": results,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
