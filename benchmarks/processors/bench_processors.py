"""Processor cost per sample (reference transformers vs fast path) and model-ready throughput.

Runs on the ground-truth sample dataset with the default TaliConfig (8 frames,
3 s windows, every sub-modality). Prints one JSON object; with ``--out`` also
writes it. Every ratio compares numbers measured in the same run.

    PYTHONPATH=src python benchmarks/processors/bench_processors.py [--quick] [--out FILE]

Sections:

- ``per_sample_ms``: median milliseconds per sample of each processor, the
  ``transformers`` reference against the fast path, on the same decoded
  inputs (reference images get the full-resolution frames they would see).
- ``decode_plus_process_ms``: the whole per-sample path, decode included,
  for video frames (reference: full-resolution decode + CLIPImageProcessor;
  fast: decode straight to 224 + batched normalise).
- ``parity``: mean / p99 / max |fast - reference| pixel intensity (/255,
  before normalisation) on coded sample frames, natural-looking frames and
  every Wikipedia image; max |diff| of the log-mel for 80/128 bins, 30 s / window.
- ``loader``: samples/s of a 2-worker DataLoader without processors, with the
  fast processors, and with the reference processors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

import tali
from tali.processors import (
    ClipPixels,
    HFAudioProcessor,
    HFImageProcessor,
    ProcessorSet,
    Tokenize,
    WhisperLogMel,
    default_processors,
)
from tali.schema import Modality, SubModality

warnings.filterwarnings("ignore", message=".*requires torchvision.*")


def _median_ms(fn, *, repeats: int, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return _summary(times)


def _paired_ms(reference, fast, *, repeats: int, warmup: int = 2) -> dict[str, Any]:
    """Time ``reference`` and ``fast`` alternately, so both see the same machine load
    (the benchmark machine is shared); the speedup is the median of per-pair ratios."""
    for _ in range(warmup):
        reference()
        fast()
    ref_times, fast_times = [], []
    for _ in range(repeats):
        for fn, times in ((reference, ref_times), (fast, fast_times)):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    ratios = [r / f for r, f in zip(ref_times, fast_times, strict=True)]
    return {
        "reference": _summary(ref_times),
        "fast": _summary(fast_times),
        "speedup": statistics.median(ratios),
    }


def _summary(times: list[float]) -> dict[str, float]:
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median": statistics.median(times), "p25": q[0], "p75": q[2], "n": len(times)}


def _assets(tmp: Path) -> tuple[str, str, Any]:
    """Local CLIP/Whisper directories from default configs and the vendored CLIP BPE (no network)."""
    import importlib.metadata

    from transformers import CLIPImageProcessor, WhisperFeatureExtractor

    from tali.processors import clip_tokenizer_from_bpe

    bpe = importlib.metadata.distribution("open_clip_torch").locate_file(
        "open_clip/bpe_simple_vocab_16e6.txt.gz"
    )
    tokenizer = clip_tokenizer_from_bpe(bpe)
    clip_dir, whisper_dir = tmp / "clip", tmp / "whisper"
    CLIPImageProcessor().save_pretrained(clip_dir)
    tokenizer.save_pretrained(clip_dir)
    WhisperFeatureExtractor().save_pretrained(whisper_dir)
    return str(clip_dir), str(whisper_dir), tokenizer


def per_sample(root: Path, clip_dir: str, whisper_dir: str, repeats: int) -> dict[str, Any]:
    from transformers import CLIPImageProcessor, CLIPTokenizer, WhisperFeatureExtractor

    image_ref = HFImageProcessor(CLIPImageProcessor.from_pretrained(clip_dir))
    image_fast = ClipPixels.from_hf(CLIPImageProcessor.from_pretrained(clip_dir))
    full_cfg = tali.TaliConfig(modalities=("youtube_content_video",), video=tali.VideoConfig(size=None))
    small_cfg = tali.TaliConfig(modalities=("youtube_content_video",))
    full = tali.TaliDataset(root, split="val", config=full_cfg)
    small = tali.TaliDataset(root, split="val", config=small_cfg)
    full_frames = full[0]["youtube_content_video"]
    small_frames = small[0]["youtube_content_video"]
    out: dict[str, Any] = {}
    n = small_cfg.video.num_frames
    out["video_frames"] = {
        "frames_per_sample": n,
        "source_resolution": list(full_frames["frames"].shape[-2:]),
        **_paired_ms(
            lambda: image_ref.process(full_frames, item_idx=0, field="v"),
            lambda: image_fast.process(small_frames, item_idx=0, field="v"),
            repeats=repeats,
        ),
        "fast_device_mode": _median_ms(
            lambda: ClipPixels(normalize="device").process(small_frames, item_idx=0, field="v"),
            repeats=repeats,
        ),
    }
    extractor = WhisperFeatureExtractor.from_pretrained(whisper_dir)
    audio_cfg = tali.TaliConfig(modalities=("youtube_content_audio",))
    window = tali.TaliDataset(root, split="val", config=audio_cfg)[0]["youtube_content_audio"]
    for n_mels in (80, 128):
        ex = extractor if n_mels == 80 else WhisperFeatureExtractor(feature_size=128)
        for padding in ("30s", "window"):
            ref, fast = HFAudioProcessor(ex, padding=padding), WhisperLogMel.from_hf(ex, padding=padding)
            out[f"audio_{n_mels}_{padding}"] = _paired_ms(
                lambda ref=ref: ref.process(window, item_idx=0, field="a"),
                lambda fast=fast: fast.process(window, item_idx=0, field="a"),
                repeats=repeats,
            )
    waves = torch.stack([window["waveform"]] * 16)
    fast = WhisperLogMel.from_hf(extractor)
    batched = _median_ms(lambda: fast(waves), repeats=repeats)
    out["audio_80_30s_batched16_per_sample"] = {k: v / 16 if k != "n" else v for k, v in batched.items()}
    tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
    text = tali.TaliDataset(root, split="val", config=tali.TaliConfig(modalities=("youtube_subtitle_text",)))[
        0
    ]
    tok = Tokenize(tokenizer)
    # Tokenising has no separate fast path: this is Tokenize's overhead over the bare tokenizer.
    out["text_subtitles"] = _paired_ms(
        lambda: tokenizer(
            text["youtube_subtitle_text"]["text"], truncation=True, max_length=77, return_tensors="pt"
        ),
        lambda: tok.process(text["youtube_subtitle_text"], item_idx=0, field="t"),
        repeats=repeats,
    )
    # Whole per-sample path for video: decode + process.
    out["decode_plus_process_video"] = _paired_ms(
        lambda: image_ref.process(full[1]["youtube_content_video"], item_idx=1, field="v"),
        lambda: image_fast.process(small[1]["youtube_content_video"], item_idx=1, field="v"),
        repeats=max(repeats // 3, 3),
    )
    return out


def parity(root: Path, clip_dir: str, whisper_dir: str) -> dict[str, Any]:
    """Fast path vs reference on the same sources (pixels in /255 before normalisation)."""
    from transformers import CLIPImageProcessor, WhisperFeatureExtractor

    from tali.processors.parity import image_pixel_parity, smooth_clip, video_pixel_parity

    processor = CLIPImageProcessor.from_pretrained(clip_dir)
    cfg = tali.TaliConfig(modalities=("youtube_content_video", "wikipedia_caption_image"))
    ds = tali.TaliDataset(root, split="train", config=cfg)
    rows = [ds.read_row(i) for i in range(len(ds))]
    out: dict[str, Any] = {
        "video_coded_frames": video_pixel_parity(
            [r["youtube_video_content"] for r in rows], processor, every=15
        ),
        "video_natural_content": video_pixel_parity(
            [smooth_clip(seed=s) for s in range(3)], processor, every=5
        ),
        "wikipedia_images": image_pixel_parity([r["image"]["bytes"] for r in rows], processor),
    }
    audio_cfg = tali.TaliConfig(
        modalities=("youtube_content_audio",), audio=tali.AudioConfig(on_missing="zeros")
    )
    audio = tali.TaliDataset(root, split="train", config=audio_cfg)
    windows = [audio[i]["youtube_content_audio"] for i in range(len(audio))]
    for n_mels in (80, 128):
        ex = (
            WhisperFeatureExtractor.from_pretrained(whisper_dir)
            if n_mels == 80
            else WhisperFeatureExtractor(feature_size=128)
        )
        for padding in ("30s", "window"):
            ref, fast = HFAudioProcessor(ex, padding=padding), WhisperLogMel.from_hf(ex, padding=padding)
            worst = max(
                float(
                    (
                        ref.process(w, item_idx=0, field="a")["input_features"]
                        - fast.process(w, item_idx=0, field="a")["input_features"]
                    )
                    .abs()
                    .max()
                )
                for w in windows
            )
            out[f"log_mel_{n_mels}_{padding}_max_abs_diff"] = worst
    return out


def _reference_set(clip_dir: str, whisper_dir: str) -> ProcessorSet:
    from transformers import CLIPImageProcessor, CLIPTokenizer, WhisperFeatureExtractor

    image = HFImageProcessor(CLIPImageProcessor.from_pretrained(clip_dir))
    text = Tokenize(CLIPTokenizer.from_pretrained(clip_dir))
    audio = HFAudioProcessor(WhisperFeatureExtractor.from_pretrained(whisper_dir))
    procs: dict[str, Any] = {}
    for sub in SubModality:
        m = sub.modality
        procs[sub.value] = (
            image if m in (Modality.IMAGE, Modality.VIDEO) else text if m is Modality.TEXT else audio
        )
    return ProcessorSet(procs)


def loader_throughput(
    root: Path, clip_dir: str, whisper_dir: str, epochs: int, workers: int
) -> dict[str, Any]:
    config = tali.TaliConfig(audio=tali.AudioConfig(on_missing="zeros"))
    full_config = config.replace(video=tali.VideoConfig(size=None), image=tali.ImageConfig(size=None))
    fast = default_processors(clip=clip_dir, whisper=whisper_dir)
    fast_device = default_processors(clip=clip_dir, whisper=whisper_dir, normalize="device")
    runs = {
        "no_processors": (config, None),
        "fast": (config, fast),
        "fast_normalize_on_device": (config, fast_device),
        "reference": (full_config, _reference_set(clip_dir, whisper_dir)),
    }
    loaders = {}
    for name, (cfg, procs) in runs.items():
        ds = tali.TaliDataset(root, split="train", config=cfg, processors=procs)
        loaders[name] = (
            ds,
            procs,
            tali.make_loader(
                ds,
                batch_size=4,
                num_workers=workers,
                persistent_workers=workers > 0,
                collate_fn=procs.collate if procs is not None else tali.collate,
            ),
        )
        for _ in loaders[name][2]:  # warm-up epoch: worker start, imports, first decodes
            pass
    rates: dict[str, list[float]] = {name: [] for name in runs}
    # Round robin over the configurations, epoch by epoch, so machine load hits all alike.
    for epoch in range(epochs):
        for name, (ds, procs, loader) in loaders.items():
            ds.set_epoch(epoch + 1)
            t = time.perf_counter()
            count = 0
            for batch in loader:
                if procs is not None:
                    batch = procs.to_device(batch, "cpu")
                count += len(batch["item_idx"])
            rates[name].append(count / (time.perf_counter() - t))
    out: dict[str, Any] = {
        name: {
            "samples_per_s": statistics.median(r),
            "epochs": epochs,
            "samples_per_epoch": len(loaders[name][0]),
        }
        for name, r in rates.items()
    }
    del loaders
    # Ratios per round (same moment, same machine load), then their median.
    for name in ("fast", "fast_normalize_on_device", "reference"):
        ratios = [b / r for b, r in zip(rates["no_processors"], rates[name], strict=True)]
        out[name]["slowdown_vs_no_processors"] = statistics.median(ratios)
        out[name]["slowdown_per_round"] = ratios
    out["fast_vs_reference"] = statistics.median(
        [f / r for f, r in zip(rates["fast"], rates["reference"], strict=True)]
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    # Per-sample costs as DataLoader workers see them (torch uses one thread per worker).
    torch.set_num_threads(1)
    root = Path(tali.sample_data.build())
    with tempfile.TemporaryDirectory() as tmp:
        clip_dir, whisper_dir, _ = _assets(Path(tmp))
        result = {
            "benchmark": "processors",
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
            },
            "parity": parity(root, clip_dir, whisper_dir),
            "per_sample_ms": per_sample(root, clip_dir, whisper_dir, repeats=5 if args.quick else 30),
            "loader": loader_throughput(
                root, clip_dir, whisper_dir, epochs=1 if args.quick else 8, workers=args.workers
            ),
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
