"""Loading at scale, measured on the ground-truth sample dataset. Prints JSON.

    python benchmarks/data/bench_loading.py [--repeats 5] [--workers 2] [--out FILE]

1. streaming (TaliStream) vs map-style (TaliDataset + shuffled DataLoader): samples/s
   and time to first batch, same config, same workers, same run;
2. peak RSS per DataLoader worker vs dataset size: 1x, 5x and 20x the train split
   (shards replicated by symlink), streaming with a shuffle buffer;
3. processed-sample cache: epoch 2 (served from the cache) vs epoch 1 (decoded and
   written) vs no cache, deterministic config.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import tali
from tali import AudioConfig, SampleCache, TaliConfig, TaliDataset, TextConfig, VideoConfig, WindowConfig
from tali.data.sources import resolve_local_files

FULL = TaliConfig(audio=AudioConfig(on_missing="zeros"), video=VideoConfig(num_frames=8, size=224))
# Deterministic (same sample every epoch), so a cache can serve epoch 2.
FIXED = FULL.replace(
    modalities=(
        "youtube_content_video",
        "youtube_content_audio",
        "youtube_subtitle_text",
        "wikipedia_caption_image",
        "wikipedia_caption_text",
    ),
    window=WindowConfig(start="centre"),
    text=TextConfig(fallback="first"),
)
# Reads the image, text and subtitle columns of every row (no media decoding): memory is rows + buffers.
LIGHT = TaliConfig(
    modalities=("wikipedia_caption_image", "wikipedia_caption_text", "youtube_subtitle_text"),
    window=WindowConfig(start="centre"),
)


def _epoch(loader) -> tuple[int, float, float]:
    start = time.perf_counter()
    first = None
    n = 0
    for batch in loader:
        n += len(batch["key"])
        first = first or time.perf_counter() - start
    return n, time.perf_counter() - start, first or 0.0


def streaming_vs_map(root: Path, workers: int, repeats: int, batch_size: int) -> dict:
    """Alternate the two loaders repeat by repeat, so load from other processes on a
    shared machine hits both alike; the first round only warms up."""
    rates: dict[str, list[float]] = {"streaming": [], "map_style": []}
    firsts: dict[str, list[float]] = {"streaming": [], "map_style": []}
    for r in range(repeats + 1):
        for name in ("streaming", "map_style"):
            if name == "streaming":
                stream = tali.load(root, split="train", config=FULL, buffer_size=64)
                stream.set_epoch(r)
                loader = stream.loader(batch_size=batch_size, num_workers=workers)
            else:
                ds = TaliDataset(root, split="train", config=FULL)
                ds.set_epoch(r)
                loader = tali.make_loader(
                    ds,
                    batch_size=batch_size,
                    num_workers=workers,
                    shuffle=True,
                    generator=torch.Generator().manual_seed(r),
                )
            n, seconds, first = _epoch(loader)
            if r:
                rates[name].append(n / seconds)
                firsts[name].append(first)
    out: dict = {
        name: {
            "samples_per_s_median": statistics.median(rates[name]),
            "samples_per_s_all": rates[name],
            "first_batch_s_median": statistics.median(firsts[name]),
            "samples_per_epoch": n,
        }
        for name in rates
    }
    out["ratio_streaming_over_map"] = (
        out["streaming"]["samples_per_s_median"] / out["map_style"]["samples_per_s_median"]
    )
    return out


def _replicate(root: Path, times: int, into: Path) -> Path:
    data = into / f"x{times}" / "data"
    data.mkdir(parents=True)
    shards = resolve_local_files(root, "train")
    total = times * len(shards)
    for k in range(times):
        for i, shard in enumerate(shards):
            j = k * len(shards) + i
            os.symlink(shard, data / f"train-{j:05d}-of-{total:05d}.parquet")
    return into / f"x{times}"


class _Rss:
    """A ``processors`` hook: records the worker's resident set size in each sample."""

    def __call__(self, sample: dict) -> dict:
        sample["rss_bytes"] = psutil.Process().memory_info().rss
        return sample


def rss_vs_size(root: Path, workers: int, batch_size: int) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for times in (1, 5, 20):
            source = _replicate(root, times, Path(tmp))
            stream = tali.load(source, split="train", config=LIGHT, buffer_size=4, processors=_Rss())
            start = time.perf_counter()
            peak, n = {}, 0
            for batch in stream.loader(batch_size=batch_size, num_workers=workers):
                n += len(batch["key"])
                for s, rss in zip(batch["stream"].tolist(), batch["rss_bytes"].tolist()):
                    peak[s] = max(peak.get(s, 0), rss)
            seconds = time.perf_counter() - start
            # Reference in the same run: map-style over the same files (its reader keeps one
            # open handle per shard it has touched).
            mapped = TaliDataset(source, split="train", config=LIGHT, processors=_Rss())
            map_peak = 0
            for batch in tali.make_loader(
                mapped,
                batch_size=batch_size,
                num_workers=workers,
                shuffle=True,
                generator=torch.Generator().manual_seed(0),
            ):
                map_peak = max(map_peak, max(batch["rss_bytes"].tolist()))
            rows.append(
                {
                    "replicas": times,
                    "shards": len(stream.files),
                    "rows": n,
                    "peak_rss_mb_per_worker": [round(peak[s] / 2**20, 1) for s in sorted(peak)],
                    "map_style_peak_rss_mb_worst_worker": round(map_peak / 2**20, 1),
                    "seconds": seconds,
                }
            )
    worst = [max(r["peak_rss_mb_per_worker"]) for r in rows]
    return {
        "config": "wikipedia_caption_image + wikipedia_caption_text + youtube_subtitle_text, buffer 4",
        "by_size": rows,
        "peak_rss_ratio_20x_over_1x": worst[-1] / worst[0],
    }


def cache_speedup(root: Path, workers: int, batch_size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cache = SampleCache(tmp, FIXED)
        stream = tali.load(root, split="train", config=FIXED, cache=cache, buffer_size=64)
        loader = stream.loader(batch_size=batch_size, num_workers=workers)
        n, cold, _ = _epoch(loader)
        stream.set_epoch(1)
        _, warm, _ = _epoch(loader)
        plain = tali.load(root, split="train", config=FIXED, buffer_size=64)
        _, baseline, _ = _epoch(plain.loader(batch_size=batch_size, num_workers=workers))
        size = cache.size_bytes()
    return {
        "samples": n,
        "no_cache_samples_per_s": n / baseline,
        "epoch1_write_samples_per_s": n / cold,
        "epoch2_cached_samples_per_s": n / warm,
        "speedup_epoch2_over_no_cache": baseline / warm,
        "cache_mb": round(size / 2**20, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = tali.sample_data.build()
    result = {
        "benchmark": "loading",
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
        "workers": args.workers,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "streaming_vs_map": streaming_vs_map(root, args.workers, args.repeats, args.batch_size),
        "peak_rss_vs_dataset_size": rss_vs_size(root, args.workers, args.batch_size),
        "cache": cache_speedup(root, args.workers, args.batch_size),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
