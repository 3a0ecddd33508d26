"""Fast decode modes: CPU ms per sample of each mode next to exact tali and torchcodec. Prints JSON.

    PYTHONPATH=src python benchmarks/decode/bench_fast_modes.py --rounds 5 --out benchmarks/results/fast_modes.json

Same output shape for every method: 8 frames at 224, 3 s of 16 kHz mono (the A/V
config), the train split of the sample dataset, and a `tali prepare` copy of it.
torchcodec decodes the frame times and window tali chose (benchmarks/suite/peers.py).
CPU time of this process, one torch thread; methods alternate within a round;
ratios are medians of per-round ratios against torchcodec on the original shards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import emit
from benchmarks.suite.peers import TorchCodecPeer, plans_from_tali
from tali import AudioConfig, TaliConfig, TaliDataset, VideoConfig, WindowConfig, sample_data
from tali.prepare import prepare


def _cpu_per_sample(dataset, n: int) -> float:
    start = time.process_time()
    for i in range(n):
        dataset[i]
    return (time.process_time() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = sample_data.build()
    base = TaliConfig(modalities=["video", "audio"], audio=AudioConfig(on_missing="zeros"))
    fast = base.replace(video=VideoConfig(skip_loop_filter=True))
    keyframe = WindowConfig(seconds=3.0, start="keyframe")
    default = TaliConfig(audio=AudioConfig(on_missing="zeros"))
    keyed = VideoConfig(thumbnail="keyframe")
    with tempfile.TemporaryDirectory() as tmp:
        prepare(root, tmp, split="train", workers=2)
        files = sorted(str(p) for p in (root / "data").glob("train-*.parquet"))
        prepared_files = sorted(str(p) for p in (Path(tmp) / "data").glob("train-*.parquet"))
        exact = TaliDataset(files, config=base)
        methods = {
            "tali exact": exact,
            "tali skip_loop_filter": TaliDataset(files, config=fast),
            "tali keyframes_only": TaliDataset(
                files, config=base.replace(video=VideoConfig(keyframes_only=True))
            ),
            "tali keyframe windows": TaliDataset(files, config=base.replace(window=keyframe)),
            "tali keyframe windows + skip_loop_filter": TaliDataset(
                files, config=fast.replace(window=keyframe)
            ),
            "tali keyframe windows, prepared shards": TaliDataset(
                prepared_files, config=base.replace(window=keyframe)
            ),
            "tali exact, prepared shards": TaliDataset(prepared_files, config=base),
            "tali skip_loop_filter, prepared shards": TaliDataset(prepared_files, config=fast),
            "torchcodec": TorchCodecPeer(files, plans_from_tali(exact), base),
            # The default config (every sub-modality): the thumbnail is most of what it
            # adds to A/V on the original shards (benchmarks/prepare/bench_prepare.py).
            "default: tali exact": TaliDataset(files, config=default),
            "default: thumbnail=keyframe": TaliDataset(files, config=default.replace(video=keyed)),
            "default: thumbnail=keyframe + keyframe windows + skip_loop_filter": TaliDataset(
                files,
                config=default.replace(
                    video=VideoConfig(thumbnail="keyframe", skip_loop_filter=True),
                    window=WindowConfig(start="keyframe"),
                ),
            ),
            "default: tali exact, prepared shards": TaliDataset(prepared_files, config=default),
        }
        n = len(exact)
        for ds in methods.values():
            _cpu_per_sample(ds, 2)  # warm-up
        times: dict[str, list[float]] = {k: [] for k in methods}
        for _ in range(args.rounds):
            for name, ds in methods.items():
                times[name].append(_cpu_per_sample(ds, n))
    result = {}
    for name, t in times.items():
        # A/V modes against torchcodec (same output shape); default-config modes against exact.
        ref, against = (
            (times["default: tali exact"], "rate_vs_default_exact")
            if name.startswith("default:")
            else (times["torchcodec"], "rate_vs_torchcodec")
        )
        result[name] = {
            "cpu_ms_per_sample": 1e3 * statistics.median(t),
            "rounds_ms": [1e3 * x for x in t],
            against: statistics.median(r / x for r, x in zip(ref, t)),
        }
    emit(result, args.out)


if __name__ == "__main__":
    main()
