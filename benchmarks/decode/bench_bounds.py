"""What the per-row bounds (issue 14.A) cost on the default path, against the unbounded way.

On the sample dataset's rows, in the same run, calls alternating, per-call CPU time:

- ``subtitles``: ``parse_subtitles`` (parser events, node/alias/byte budgets) vs
  ``yaml.compose`` of the same document (what the parser did before, without budgets);
- ``image``: ``decode_image`` (format allowlist, scan count, decode clock, resize of the
  output square only) vs ``Image.open`` + ``load`` + resize-then-crop;
- ``clip_open``: ``open_clip`` (mp4 box counts, codec whitelist, ``max_pixels``, and tali's
  stream probe) vs a bare ``av.open``: an upper bound on what the bounds add to opening
  (measured apart: the box walk is ~15 us a clip, the options change nothing measurable).

``ratio`` is the median of per-pair ratios (bounded / reference; below 1 is faster). Prints JSON.

    PYTHONPATH=src python benchmarks/decode/bench_bounds.py [--repeats 21] [--out results.json]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import pyarrow.parquet as pq
import yaml
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import emit, machine
from tali import sample_data
from tali.decode.clip import open_clip
from tali.decode.image import decode_image
from tali.decode.subtitles import parse_subtitles


def _reference_image(data: bytes, size: int = 224) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (size * 2, size * 2))
    image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return image.crop((left, top, left + size, top + size))


def _reference_open(data: bytes) -> None:
    with av.open(io.BytesIO(data), format="mp4") as container:
        _ = container.streams.video[0].codec_context.width


def _pairs(bounded: Callable[[], None], reference: Callable[[], None], repeats: int) -> dict[str, float]:
    bounded(), reference()  # warm up
    ours, theirs = [], []
    for i in range(repeats):
        order = [(bounded, ours), (reference, theirs)]
        for fn, out in order if i % 2 == 0 else reversed(order):
            start = time.process_time()
            fn()
            out.append(time.process_time() - start)
    return {
        "bounded_ms": 1e3 * statistics.median(ours),
        "reference_ms": 1e3 * statistics.median(theirs),
        "ratio": statistics.median(a / b for a, b in zip(ours, theirs, strict=True) if b > 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--out")
    args = parser.parse_args()
    root = sample_data.build()
    rows = [r for p in sorted((root / "data").glob("train-*.parquet")) for r in pq.read_table(p).to_pylist()]
    docs = [r["youtube_subtitle_text"] for r in rows if r["youtube_subtitle_text"]]
    images = [r["image"]["bytes"] for r in rows]
    clips = [r["youtube_video_content"] for r in rows]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    results = {
        "subtitles": _pairs(
            lambda: [parse_subtitles(d) for d in docs],
            lambda: [yaml.compose(d, Loader=loader) for d in docs],
            args.repeats,
        ),
        "image": _pairs(
            lambda: [decode_image(d, size=224, max_pixels=64_000_000) for d in images],
            lambda: [_reference_image(d) for d in images],
            args.repeats,
        ),
        "clip_open": _pairs(
            lambda: [open_clip(d).close() for d in clips],
            lambda: [_reference_open(d) for d in clips],
            args.repeats,
        ),
    }
    emit(
        {"benchmark": "decode/bounds", "rows": len(rows), "results": results, "machine": machine()}, args.out
    )


if __name__ == "__main__":
    main()
