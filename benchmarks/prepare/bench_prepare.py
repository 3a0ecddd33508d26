"""`tali prepare`: decode cost of prepared vs original shards, size, prepare throughput,
and the measurements behind the default codec settings. Prints JSON.

    PYTHONPATH=src python benchmarks/prepare/bench_prepare.py --out benchmarks/results/prepare.json

CPU time is ``time.process_time()`` of this process (one thread for torch), so a
loaded machine slows the wall clock, not the numbers. Rates are medians over
rounds; prepared and original alternate within a round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import emit
from tali import AudioConfig, TaliConfig, TaliTransform, sample_data
from tali.clock import STAGES, StageClock, activate
from tali.decode.clip import open_clip
from tali.decode.index import frames_between
from tali.decode.video import decode_frames_at
from tali.prepare import PrepareSettings, prepare, reencode_clip


def _rows(root: Path, split: str = "train") -> list[dict[str, Any]]:
    return [
        r for p in sorted((root / "data").glob(f"{split}-*.parquet")) for r in pq.read_table(p).to_pylist()
    ]


def _cpu_per_sample(transform: TaliTransform, rows: list[dict[str, Any]], epochs: int) -> float:
    start = time.process_time()
    n = 0
    for epoch in range(epochs):
        for row in rows:
            transform(row, key=row["item_idx"], epoch=epoch)
            n += 1
    return (time.process_time() - start) / n


def _alternate(configs: dict[str, TaliConfig], a: list, b: list, rounds: int, epochs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, config in configs.items():
        transform = TaliTransform(config)
        _cpu_per_sample(transform, a[:2], 1), _cpu_per_sample(transform, b[:2], 1)  # warm-up
        orig, prep, ratios = [], [], []
        for _ in range(rounds):
            x, y = _cpu_per_sample(transform, a, epochs), _cpu_per_sample(transform, b, epochs)
            orig.append(x), prep.append(y), ratios.append(x / y)
        out[name] = {
            "original_ms_per_sample": 1e3 * statistics.median(orig),
            "prepared_ms_per_sample": 1e3 * statistics.median(prep),
            "original_samples_per_cpu_second": 1 / statistics.median(orig),
            "prepared_samples_per_cpu_second": 1 / statistics.median(prep),
            "speedup_median_of_round_ratios": statistics.median(ratios),
            "speedup_rounds": ratios,
        }
    return out


#: The default config built up one sub-modality group at a time: each step's cost is
#: what that group adds (the thumbnail, the random frame, the image, the texts).
_STEPS = {
    "A/V": ["youtube_content_video", "youtube_content_audio"],
    "+ random frame": ["youtube_random_video_frame"],
    "+ thumbnail": ["youtube_thumbnail_image"],
    "+ Wikipedia image": ["wikipedia_caption_image"],
    "+ texts (= default)": ["text"],
}


def _increments(a: list, b: list, rounds: int) -> list[dict[str, Any]]:
    """CPU ms per sample of each cumulative step on both copies and what each step adds.

    Every step and both copies take turns within each round (medians over rounds), so a
    step's increment is not a difference between two moments of a loaded machine."""
    transforms, chosen = {}, []
    for name, subs in _STEPS.items():
        chosen = chosen + subs
        config = TaliConfig(modalities=list(chosen), audio=AudioConfig(on_missing="zeros"))
        transforms[name] = TaliTransform(config)
        _cpu_per_sample(transforms[name], a[:2], 1), _cpu_per_sample(transforms[name], b[:2], 1)
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in transforms}
    for _ in range(rounds):
        for name, transform in transforms.items():
            times[name][0].append(_cpu_per_sample(transform, a, 1))
            times[name][1].append(_cpu_per_sample(transform, b, 1))
    out: list[dict[str, Any]] = []
    for name, (orig, prep) in times.items():
        row = {
            "step": name,
            "original_ms": 1e3 * statistics.median(orig),
            "prepared_ms": 1e3 * statistics.median(prep),
        }
        before = out[-1] if out else {"original_ms": 0.0, "prepared_ms": 0.0}
        row["original_added_ms"] = row["original_ms"] - before["original_ms"]
        row["prepared_added_ms"] = row["prepared_ms"] - before["prepared_ms"]
        out.append(row)
    return out


def _stages(rows: list[dict[str, Any]], config: TaliConfig) -> dict[str, float]:
    """Stage clock totals (ms per sample) of one pass: where a sample's time goes."""
    transform = TaliTransform(config)
    _cpu_per_sample(transform, rows[:2], 1)
    total = [0] * len(STAGES)
    for row in rows:
        with activate(StageClock()) as clock:
            transform(row, key=row["item_idx"])
        total = [t + n for t, n in zip(total, clock.ns)]
    return {stage.label: total[stage] / 1e6 / len(rows) for stage in STAGES if total[stage]}


def _packets_per_window(clips: list[dict[str, Any]], windows: int = 10) -> float:
    """Video packets the decoder is fed for 8 uniform frames of a 3 s window (seeded
    windows): the work behind the decode cost, exact and independent of machine load."""
    total = n = 0
    for clip_row in clips:
        for seed in range(windows):
            t0 = float(np.random.default_rng(seed).uniform(0, 26))
            with open_clip(clip_row["youtube_video_content"]) as clip:
                frames = frames_between(clip, t0, t0 + 3.0)
                inside = frames.in_window(t0, t0 + 3.0)
                picked = inside[np.linspace(0, inside.size - 1, 8).round().astype(int)]
                total += decode_frames_at(clip, frames, picked, size=224).decoded_packets
                n += 1
    return total / n


def _codec_choices(rows: list[dict[str, Any]], epochs: int) -> list[dict[str, Any]]:
    """Decode cost (default A/V sample) and size for candidate settings, on 3 clips."""
    base = PrepareSettings()
    variants = {
        "veryfast fastdecode bf3 non-reference aac (default)": base,
        "veryfast fastdecode bf0 aac": base.replace(bframes=0),
        "veryfast fastdecode bf2 non-reference aac": base.replace(bframes=2),
        "veryfast bf3 non-reference aac (CABAC + deblock)": base.replace(fastdecode=False),
        "veryfast fastdecode bf3 flac": base.replace(audio_codec="flac"),
        "veryfast fastdecode bf3 opus": base.replace(audio_codec="libopus"),
        "veryfast fastdecode bf3 crf 28": base.replace(crf=28),
    }
    transform = TaliTransform(
        TaliConfig(modalities=["video", "audio"], audio=AudioConfig(on_missing="zeros"))
    )
    picked = rows[:3]
    out = []
    for name, settings in variants.items():
        start = time.process_time()
        clips = [
            dict(r, youtube_video_content=reencode_clip(r["youtube_video_content"], settings)) for r in picked
        ]
        encode = (time.process_time() - start) / len(picked)
        _cpu_per_sample(transform, clips, 1)
        cost = statistics.median(_cpu_per_sample(transform, clips, epochs) for _ in range(3))
        audio_bytes = []
        for clip in clips:
            import io

            import av

            with av.open(io.BytesIO(clip["youtube_video_content"])) as c:
                audio_bytes.append(sum(p.size for p in c.demux(c.streams.audio[0])))
        out.append(
            {
                "settings": name,
                "av_sample_ms": 1e3 * cost,
                "decoded_packets_per_window": _packets_per_window(clips),
                "clip_kb": sum(len(c["youtube_video_content"]) for c in clips) / len(clips) / 1e3,
                "audio_kb": sum(audio_bytes) / len(clips) / 1e3,
                "encode_cpu_s_per_clip": encode,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = sample_data.build()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        report = prepare(root, tmp, split="train", workers=args.workers)
        wall = time.monotonic() - started
        summary = report.summary()
        original, prepared = _rows(root), _rows(Path(tmp))
        configs = {
            "default (every sub-modality)": TaliConfig(audio=AudioConfig(on_missing="zeros")),
            "A/V (8 frames at 224, 3 s of 16 kHz mono)": TaliConfig(
                modalities=["video", "audio"], audio=AudioConfig(on_missing="zeros")
            ),
        }
        result = {
            "decode": _alternate(configs, original, prepared, args.rounds, args.epochs),
            "default_by_step": _increments(original, prepared, max(args.rounds, 5)),
            "default_by_stage_ms": {
                "original": _stages(original, configs["default (every sub-modality)"]),
                "prepared": _stages(prepared, configs["default (every sub-modality)"]),
            },
            "size": {
                "clip_bytes_original": summary["clip_bytes_in"],
                "clip_bytes_prepared": summary["clip_bytes_out"],
                "clip_ratio": summary["clip_size_ratio"],
                "shard_bytes_original": sum(
                    p.stat().st_size for p in (root / "data").glob("train-*.parquet")
                ),
                "shard_bytes_prepared": sum(p.stat().st_size for p in (Path(tmp) / "data").glob("*.parquet")),
            },
            "prepare": {
                "clips": summary["rows"],
                "cpu_seconds": summary["encode_cpu_seconds"],
                "clips_per_cpu_second": summary["rows"] / summary["encode_cpu_seconds"],
                "wall_seconds": wall,
                "workers": args.workers,
            },
            "codec_choices": _codec_choices(original, args.epochs),
        }
    emit(result, args.out)


if __name__ == "__main__":
    main()
