"""Shared pieces of the benchmarks: the reference decoders and measuring helpers.

Two references bracket ``tali``'s decode path, on the same rows and windows:

- ``naive_decode``: what a first loader does: decode the entire clip (every
  frame to RGB at full resolution, all the audio), then pick the window's
  frames, resize them, and cut the audio.
- ``floor_decode``: the least work possible with PyAV: seek to the window,
  decode only the GOPs that show a wanted frame, each up to that frame, and the
  window's audio; convert nothing. No loader can beat it without skipping
  decoding that the frames depend on.
- ``output_floor_decode``: the floor plus the least output work: the chosen
  frames scaled to RGB by swscale and the window's samples as tensors. Its rate
  over a peer's is the most any loader of the same output can reach against it.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow.parquet as pq
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tali import TaliConfig, TaliTransform, sample_data
from tali.decode.video import _REORDER_LOOKAHEAD, _Picker, to_rgb


def sample_rows(split: str = "train", *, with_audio_only: bool = True) -> list[dict[str, Any]]:
    """Rows of the sample dataset held in memory (so every method reads the same bytes)."""
    root = sample_data.build()
    truth = sample_data.load_truth(root)
    rows = []
    for path in sorted((root / "data").glob(f"{split}-*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    if with_audio_only:
        rows = [r for r in rows if truth[r["item_idx"]]["has_audio"]]
    return rows


def plans(rows: list[dict[str, Any]], config: TaliConfig, epoch: int = 0) -> list[dict[str, Any]]:
    """The window and frame times tali chooses for each row, for the references to reuse."""
    out = []
    transform = TaliTransform(config.replace(modalities=("youtube_content_video",)))
    for key, row in enumerate(rows):
        sample = transform(row, key=key, epoch=epoch)
        out.append(
            {
                "start": sample["window"]["start_seconds"],
                "duration": sample["window"]["duration_seconds"],
                # A hair after each chosen frame's start: the frame shown then is that frame.
                "times": (sample["youtube_content_video"]["pts_seconds"] + 1e-4).tolist(),
            }
        )
    return out


def naive_decode(row: dict[str, Any], plan: dict[str, Any], size: int, sample_rate: int) -> dict[str, Any]:
    """Decode the whole clip, then pick and resize frames and cut the audio."""
    with av.open(io.BytesIO(row["youtube_video_content"])) as container:
        container.streams.video[0].codec_context.thread_count = 1
        frames, times = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(frame.time)
        container.seek(0)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        for frame in container.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    audio = np.concatenate(chunks)
    times_arr = np.asarray(times)
    picked = []
    for t in plan["times"]:
        k = max(int(np.searchsorted(times_arr, t, side="right")) - 1, 0)
        video = torch.from_numpy(frames[k]).permute(2, 0, 1)[None].float()
        h, w = video.shape[-2:]
        scale = size / min(h, w)
        video = torch.nn.functional.interpolate(
            video, size=(round(h * scale), round(w * scale)), mode="bicubic"
        )
        top, left = (video.shape[-2] - size) // 2, (video.shape[-1] - size) // 2
        picked.append(video[0, :, top : top + size, left : left + size].clamp(0, 255).to(torch.uint8))
    lo = round(plan["start"] * sample_rate)
    wave = audio[lo : lo + round(plan["duration"] * sample_rate)]
    return {"frames": torch.stack(picked), "waveform": torch.from_numpy(wave.copy())}


def floor_decode(row: dict[str, Any], plan: dict[str, Any], threads: int = 1) -> int:
    """Seek and decode exactly what the window needs; convert nothing. Returns packets decoded.

    Video: only the GOPs that hold a wanted frame, each up to the first packet
    after its last wanted frame (a GOP whose successor keyframe starts at or before
    the next wanted time is never decoded), and the reordered B-frames shown at a
    wanted time; decided on packet timestamps, never waiting for the decoder's
    reordering delay. Audio: the window's packets. The video walk is the rule of
    ``tali.decode.video._NeededPackets``, written out without its generators and
    bookkeeping so that it stays a floor for the Python around the decoder too.
    ``threads`` matches tali's ``VideoConfig.decoder_threads`` (1: one core per
    DataLoader worker), so the two compare the same decoder setup.
    """
    with av.open(io.BytesIO(row["youtube_video_content"])) as container:
        decoded = _decode_needed_video(container, sorted(plan["times"]), threads, on_frames=None)
        if container.streams.audio:
            for _ in _window_audio(container, plan):
                pass
    return decoded


def output_floor_decode(
    row: dict[str, Any], plan: dict[str, Any], size: int, sample_rate: int, threads: int = 1
) -> dict[str, torch.Tensor]:
    """The floor plus the one piece of output work no loader of this output can skip.

    ``floor_decode``'s decoding, then each wanted frame scaled and cropped to
    ``size`` RGB by swscale with torchcodec's filter (bilinear, cheaper than tali's
    default bicubic), and ``round(duration * sample_rate)`` float32 samples of the
    window's first channel as decoded (no downmix, no resampling, so less audio work
    than any loader's). Returned as tensors, so the DataLoader moves as many bytes as
    for tali's output. No loader that decodes the same frames with FFmpeg and returns
    this output can be faster: its rate over a peer's bounds the ratio any loader can
    reach against that peer.
    """
    times = sorted(plan["times"])
    length = round(plan["duration"] * sample_rate)
    waveform = np.zeros(length, np.float32)
    with av.open(io.BytesIO(row["youtube_video_content"])) as container:
        video = container.streams.video[0]
        time_base = float(video.time_base)
        # tali's own picker: each time gets the frame shown then, converted once settled.
        picker = _Picker(times, lambda frame: to_rgb(frame, size, "bilinear"))

        def offer(frames: list[av.VideoFrame]) -> None:
            for frame in frames:  # drained frames carry no pts, only their dts (as in tali)
                picker.offer(frame, (frame.pts if frame.pts is not None else frame.dts) * time_base)

        _decode_needed_video(container, times, threads, on_frames=offer)
        offer(video.codec_context.decode(None))  # the frames the decoder's reordering delay holds
        picker.finish(half_frame=0.5 / float(video.average_rate))
        if container.streams.audio:
            filled = 0
            for frame in _window_audio(container, plan):
                plane = np.frombuffer(frame.planes[0], np.float32, frame.samples)
                n = min(frame.samples, length - filled)
                waveform[filled : filled + n] = plane[:n]
                filled += n
    return {"frames": torch.from_numpy(np.stack(picker.pixels)), "waveform": torch.from_numpy(waveform)}


def _decode_needed_video(
    container: av.container.InputContainer,
    times: list[float],
    threads: int,
    on_frames: Callable[[list[av.VideoFrame]], None] | None,
) -> int:
    """``floor_decode``'s video walk over sorted ``times``; returns packets decoded."""
    video = container.streams.video[0]
    codec = video.codec_context
    codec.thread_count = threads
    time_base = float(video.time_base)
    container.seek(int(times[0] / video.time_base), stream=video, backward=True)
    held: list[av.Packet] = []
    k, read_after, decoded = 0, 0, 0
    for packet in container.demux(video):
        if packet.size == 0:
            break
        t = packet.pts * time_base
        if k < len(times) and packet.is_keyframe and t <= times[k]:
            held = [packet]  # nothing before this keyframe shows times[k] or later
            continue
        if k == len(times):  # B-frames shown before the last time follow it closely
            read_after += 1
            if packet.is_keyframe or read_after > _REORDER_LOOKAHEAD:
                break
        held.append(packet)
        if (k < len(times) and t > times[k]) or (k > 0 and t <= times[k - 1]):
            for p in held:
                frames = codec.decode(p)
                if on_frames is not None:
                    on_frames(frames)
                decoded += 1
            held = []
            while k < len(times) and times[k] < t:
                k += 1
    return decoded


def _window_audio(container: av.container.InputContainer, plan: dict[str, Any]) -> Iterator[av.AudioFrame]:
    """The decoded audio frames from just before the window's start to its end."""
    audio = container.streams.audio[0]
    end = plan["start"] + plan["duration"]
    container.seek(int(max(plan["start"] - 0.1, 0) / audio.time_base), stream=audio, backward=True)
    for frame in container.decode(audio):
        if frame.time >= end:
            break
        yield frame


def time_per_pass(fn: Callable[[], int], repeats: int, warmup: int = 1) -> list[float]:
    """Samples/s of each timed pass of ``fn`` (which returns how many samples it made)."""
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - start))
    return rates


def time_alternating(
    fns: dict[str, Callable[[], int]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Samples/s of each pass of every ``fn``, the passes taken in turns (the order
    flips every repeat), so that pass ``i`` of two methods can be paired: a drift in
    the machine's load hits both members of a pair alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    rates: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats):
        for name in list(fns) if i % 2 == 0 else reversed(list(fns)):
            start = time.perf_counter()
            n = fns[name]()
            rates[name].append(n / (time.perf_counter() - start))
    return rates


def summary(rates: list[float]) -> dict[str, Any]:
    return {
        "samples_per_s_median": round(statistics.median(rates), 2),
        "samples_per_s_min": round(min(rates), 2),
        "samples_per_s_max": round(max(rates), 2),
        "passes": len(rates),
    }


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_child(target: str, args: tuple, queue) -> None:  # pragma: no cover - runs in a subprocess
    import importlib
    import threading

    module_name, _, function = target.rpartition(".")
    fn = getattr(importlib.import_module(module_name), function)
    state = fn(*args, prepare_only=True)  # imports, rows in memory, one warm-up sample
    base = _rss_now_mb()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_now_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    fn(*args, prepare_only=False, state=state)
    done.set()
    sampler.join()
    queue.put(peak[0] - base)


def peak_rss_increase_mb(target: str, *args: Any) -> float:
    """Peak RSS growth (MiB) while ``target(*args)`` works, in a fresh process.

    ``target`` is "module.function" taking ``prepare_only`` and ``state``: called
    once with ``prepare_only=True`` (imports, reading rows; returns a state) and
    once with ``prepare_only=False, state=...`` (the work measured). RSS is
    sampled every millisecond from /proc, relative to the RSS after preparing.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_rss_child, args=(target, args, queue))
    process.start()
    value = queue.get(timeout=600)
    process.join()
    return round(value, 1)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "pyav": av.__version__,
        "ffmpeg": str(getattr(av, "ffmpeg_version_info", "unknown")),
    }


def emit(result: dict[str, Any], out: str | None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
