"""Cut aligned windows from a live source (URL, growing file, '-' for stdin) and report latency."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tali.cli._common import non_negative_int, positive_float, positive_int

HELP = "aligned windows from a live stream, with latency (--stats)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", help="URL PyAV can open, a path (with --follow if still written), or '-' (stdin)"
    )
    parser.add_argument("--seconds", type=positive_float, default=3.0, help="window length (s)")
    parser.add_argument("--hop", type=positive_float, default=1.0, help="seconds between window starts")
    parser.add_argument("--frames", type=positive_int, default=8, help="frames per window")
    parser.add_argument("--size", type=positive_int, default=224, help="frame side (px)")
    parser.add_argument(
        "--timeout", type=positive_float, default=5.0, help="read timeout (s): a longer stall is an error"
    )
    parser.add_argument(
        "--reconnect", type=non_negative_int, default=0, help="reopen a stalled/broken URL this many times"
    )
    parser.add_argument("--follow", action="store_true", help="the file is still being written")
    parser.add_argument(
        "--format", default=None, help="container format (e.g. mpegts) when it cannot be probed"
    )
    parser.add_argument(
        "--max-windows",
        type=positive_int,
        default=None,
        help="stop after this many windows (default: the end)",
    )
    parser.add_argument(
        "--process", action="store_true", help="CLIP pixels + Whisper log-mel, as in training"
    )
    parser.add_argument("--stats", action="store_true", help="print latency median/p99 at the end")
    parser.add_argument("--json", action="store_true", help="one JSON line per window (and the stats)")


def run(args: argparse.Namespace) -> int:
    from tali import SubModality, TaliConfig, VideoConfig, WindowConfig, live
    from tali.realtime import ReconnectPolicy

    config = TaliConfig(
        modalities=(SubModality.YOUTUBE_CONTENT_VIDEO, SubModality.YOUTUBE_CONTENT_AUDIO),
        window=WindowConfig(seconds=args.seconds),
        video=VideoConfig(num_frames=args.frames, size=args.size),
    )
    processors = None
    if args.process:
        from tali.processors import ClipPixels, ProcessorSet, WhisperLogMel

        chosen: dict[str, Any] = {
            "youtube_content_video": ClipPixels(size=args.size),
            "youtube_content_audio": WhisperLogMel(),
        }
        processors = ProcessorSet(chosen)
    # stdin's unbuffered file: the reader thread then holds no lock of sys.stdin, which
    # interpreter shutdown would wait for ("Fatal Python error: could not acquire lock").
    source = getattr(sys.stdin.buffer, "raw", sys.stdin.buffer) if args.source == "-" else args.source
    stream = live(
        source,
        config,
        hop_seconds=args.hop,
        processors=processors,
        timeout=args.timeout,
        reconnect=ReconnectPolicy(max_attempts=args.reconnect) if args.reconnect else None,
        follow=args.follow,
        format=args.format,
        max_windows=args.max_windows,
    )
    for window in stream:
        info = window["live"]
        if args.json:
            print(json.dumps({k: info[k] for k in sorted(info)}), flush=True)
        else:
            print(
                f"window {info['index']:5d}  stream {info['stream_start_seconds']:8.2f}-"
                f"{info['stream_end_seconds']:.2f} s  latency {1000 * info['latency_seconds']:7.1f} ms",
                flush=True,
            )
    if args.stats:
        summary = stream.stats.summary()
        if args.json:
            print(json.dumps({"stats": summary}))
        else:
            lat = summary.get("latency_ms", {})
            print(
                f"{summary['windows']} windows, {summary['reconnects']} reconnects, "
                f"latency median {lat.get('median', float('nan')):.1f} ms, p99 {lat.get('p99', float('nan')):.1f} ms"
            )
    return 0
