"""``tali.live`` end to end: latency, drift and memory over a long stream.

The stream: the sample data's standard clip (640x360, 30 fps H.264 + AAC)
remuxed back to back into ``--minutes`` of MPEG-TS (no re-encoding; timestamps
continuous), served over real HTTP on loopback by ``tali.realtime.testing.StreamServer``
paced at ``--pace`` x real time (a 10-minute stream at 10x takes one minute;
``--pace 1`` is real time). Windows: 3 s, 8 frames at 224, 16 kHz audio, hop 1 s,
default processing (``ClipPixels`` + ``WhisperLogMel``: what a CLIP/Whisper
model takes). One torch thread, as a serving process would pin.

- latency: wall time from the arrival of the packet that completed a window
  to the processed window being yielded (median, p99, max); goal < 200 ms;
- drift: window k must cover stream ``[k * hop, k * hop + 3]`` exactly, and the
  arrival lag (arrival minus when the server's pacing released that stream time)
  must not grow: its least-squares slope over the run, and the median lag of the
  first and last minute;
- memory: peak RSS of the first and last minute (bounded: no growth).

    PYTHONPATH=src python benchmarks/realtime/bench_live.py --minutes 10 --pace 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import psutil
import pyarrow.parquet as pq
import torch

from tali import TaliConfig, VideoConfig, WindowConfig, live, sample_data
from tali.processors import ClipPixels, ProcessorSet, WhisperLogMel
from tali.realtime.testing import StreamServer, mpegts_of


def standard_clip() -> bytes:
    root = sample_data.build()
    truth = sample_data.load_truth(root)
    item = next(i for i, t in truth.items() if t["variant"] == "standard" and t["split"] == "train")
    for path in sorted((root / "data").glob("train-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            if row["item_idx"] == item:
                return row["youtube_video_content"]
    raise RuntimeError("no standard clip in the sample data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--pace", type=float, default=10.0, help="x real time (0: unpaced)")
    parser.add_argument("--hop", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    clip = standard_clip()
    data, seconds = mpegts_of(clip, repeat=max(1, round(args.minutes * 60 / 30)))
    config = TaliConfig(
        modalities=("youtube_content_video", "youtube_content_audio"),
        window=WindowConfig(seconds=3.0),
        video=VideoConfig(num_frames=8, size=224),
    )
    procs = ProcessorSet({"youtube_content_video": ClipPixels(), "youtube_content_audio": WhisperLogMel()})
    process = psutil.Process()
    rss, lags, starts, latencies, walls = [], [], [], [], []
    with StreamServer(data, seconds=seconds, rate=args.pace or None) as server:
        began = time.time()
        stream = live(server.url, config, hop_seconds=args.hop, processors=procs, timeout=10)
        for window in stream:
            info = window["live"]
            latencies.append(info["latency_seconds"])
            starts.append(info["stream_start_seconds"] - info["index"] * args.hop)
            walls.append(info["arrival_wall"] - began)
            if args.pace:
                # When the server's pacing released the window's end (data rate is
                # uniform in bytes, close to uniform in time for this clip).
                lags.append(info["arrival_wall"] - (began + info["stream_end_seconds"] / args.pace))
            rss.append(process.memory_info().rss)
    walls_arr = np.array(walls)
    minute = 60.0 / (args.pace or 1.0)  # one stream minute, in wall seconds
    first = walls_arr <= walls_arr[0] + minute
    last = walls_arr >= walls_arr[-1] - minute
    lat = sorted(latencies)
    result: dict = {
        "benchmark": "realtime/live",
        "stream_seconds": seconds,
        "pace": args.pace,
        "windows": len(latencies),
        "reconnects": stream.stats.reconnects,
        "bad_packets": stream.stats.bad_packets,
        "latency_ms": {
            "median": 1000 * statistics.median(lat),
            "p99": 1000 * lat[min(len(lat) - 1, int(np.ceil(0.99 * len(lat))) - 1)],
            "max": 1000 * lat[-1],
        },
        "goal": {
            "latency_ms_max": 200,
            "met": 1000 * lat[min(len(lat) - 1, int(np.ceil(0.99 * len(lat))) - 1)] < 200,
        },
        "drift": {"max_window_offset_seconds": float(np.max(np.abs(starts)))},
        "rss_mb": {
            "first_minute_peak": max(np.array(rss)[first]) / 2**20,
            "last_minute_peak": max(np.array(rss)[last]) / 2**20,
        },
    }
    if lags:
        idx = np.arange(len(lags))
        result["drift"].update(
            {
                "arrival_lag_slope_ms_per_window": 1000 * float(np.polyfit(idx, np.array(lags), 1)[0]),
                "arrival_lag_first_minute_ms": 1000 * statistics.median(np.array(lags)[first]),
                "arrival_lag_last_minute_ms": 1000 * statistics.median(np.array(lags)[last]),
            }
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
