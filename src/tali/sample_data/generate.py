"""Write the ground-truth sample dataset: real TALI rows whose content encodes time.

The dataset has the Hub's layout (``data/{split}-0000i-of-0000N.parquet``) and
the exact TALI schema, so every loader path runs on it unchanged. Each row's
true parameters go to ``truth.json`` next to ``data/`` so tests (and users)
can compare a pipeline's output with what was put in.
"""

from __future__ import annotations

import dataclasses
import io
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from PIL import Image

from tali._mp import main_not_rerun
from tali.atomic import publish_dir
from tali.sample_data.patterns import WHITE, draw_code, subtitle_text, tone_hz
from tali.sample_data.realworld import REALWORLD_VARIANTS, encode_real_clip
from tali.schema import TALI_SCHEMA, Column, WitField

__all__ = ["GENERATOR_VERSION", "VARIANTS", "ClipSpec", "encode_clip", "write_dataset"]

#: Bump when the content changes, so cached copies are rebuilt.
GENERATOR_VERSION = 6


@dataclass(frozen=True)
class ClipSpec:
    """The true parameters of one generated clip."""

    variant: str = "standard"
    fps: int = 30
    width: int = 640
    height: int = 360
    duration_seconds: float = 30.0
    gop_seconds: float = 2.0
    has_audio: bool = True
    sample_rate: int = 44_100
    audio_layout: str = "stereo"
    #: Audio stream starts this many seconds after the video stream.
    audio_offset_seconds: float = 0.0
    silent: bool = False
    #: ``[start, end)`` seconds during which the picture stays on the frame at ``start``.
    frozen_seconds: tuple[float, float] | None = None
    #: ``[start, end)`` seconds of all-black frames (no code).
    black_seconds: tuple[float, float] | None = None

    @property
    def num_frames(self) -> int:
        return round(self.duration_seconds * self.fps)

    @property
    def audio_channels(self) -> int:
        return av.AudioLayout(self.audio_layout).nb_channels


VARIANTS: tuple[ClipSpec, ...] = (
    ClipSpec(),
    ClipSpec(variant="fps25", fps=25),
    ClipSpec(variant="hd720", width=1280, height=720),
    ClipSpec(variant="audio48k", sample_rate=48_000),
    ClipSpec(variant="mono", audio_layout="mono"),
    ClipSpec(variant="surround51", audio_layout="5.1"),
    ClipSpec(variant="gop10s", gop_seconds=10.0),
    ClipSpec(variant="no_audio", has_audio=False),
    ClipSpec(variant="short_clip", duration_seconds=12.0),
    ClipSpec(variant="audio_offset", audio_offset_seconds=0.5),
    ClipSpec(variant="silent", silent=True),
    ClipSpec(variant="frozen", frozen_seconds=(10.0, 20.0)),
    ClipSpec(variant="black", black_seconds=(5.0, 8.0)),
)

_LANGUAGE_SETS = (
    ("en",),
    ("de", "en"),
    ("fr",),
    ("es", "ja", "en"),
    ("de", "fr"),
    ("en", "it"),
    ("ja",),
)
_IMAGE_KINDS = (
    ("RGB", "JPEG", (320, 240)),
    ("RGBA", "PNG", (256, 384)),
    ("L", "JPEG", (500, 300)),
    ("I;16", "PNG", (240, 240)),
    ("P", "PNG", (300, 200)),
    ("RGB", "PNG", (1024, 300)),
    ("CMYK", "JPEG", (200, 260)),
    ("LA", "PNG", (180, 320)),
)


def _frame_pixels(spec: ClipSpec, index: int, background: np.ndarray) -> np.ndarray:
    t = index / spec.fps
    if spec.black_seconds and spec.black_seconds[0] <= t < spec.black_seconds[1]:
        return np.zeros((spec.height, spec.width, 3), np.uint8)
    shown = index
    if spec.frozen_seconds and spec.frozen_seconds[0] <= t < spec.frozen_seconds[1]:
        shown = round(spec.frozen_seconds[0] * spec.fps)
    # A scrolling texture gives the encoder real motion to code, outside the grid.
    # ``background`` is one period wider than the frame, so a slice scrolls it.
    offset = (2 * shown) % _PERIOD
    canvas = background[:, offset : offset + spec.width].copy()
    draw_code(canvas, shown)
    return canvas


_PERIOD = 80  # pixels


def _background(spec: ClipSpec) -> np.ndarray:
    y = np.linspace(0, 1, spec.height)[:, None]
    x = (2 * np.pi / _PERIOD) * np.arange(spec.width + _PERIOD)[None, :]
    base = 0.5 + 0.25 * np.sin(x + 3 * y)
    rgb = np.stack([base * 180, (1 - base) * 160 + 40 * y, np.full_like(base, 110)], axis=2)
    return rgb.clip(0, 255).astype(np.uint8)


def _tone_track(spec: ClipSpec) -> np.ndarray:
    """``[channels, samples]`` float32 for the audio stream (starts at the offset)."""
    sr = spec.sample_rate
    start = round(spec.audio_offset_seconds * sr)
    end = round(spec.duration_seconds * sr)
    t = np.arange(start, end) / sr  # clip time of each sample
    seconds = np.floor(t + 1e-9)
    # Phase-continuous across second boundaries: integrate the frequency.
    freq = TONE(seconds)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    amplitude = 0.0 if spec.silent else 0.3
    mono = (amplitude * np.sin(phase)).astype(np.float32)
    channels = spec.audio_channels
    track = np.zeros((channels, mono.size), np.float32)
    if channels <= 2:
        track[:] = mono
    else:  # 5.1: the tone in front left, front right and centre; surrounds quiet
        track[:3] = mono
    return track


def TONE(seconds: np.ndarray) -> np.ndarray:
    return np.vectorize(tone_hz)(seconds)


def encode_clip(spec: ClipSpec) -> bytes:
    """Encode one clip with PyAV: H.264 (yuv420p) and AAC in mp4, like TALI's."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=spec.fps)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        gop = str(round(spec.gop_seconds * spec.fps))
        video.options = {
            "preset": "superfast",
            "crf": "26",
            "g": gop,
            "keyint_min": gop,
            "sc_threshold": "0",
            "bf": "2",
        }
        audio = None
        if spec.has_audio:
            audio = container.add_stream("aac", rate=spec.sample_rate)
            audio.layout = spec.audio_layout
            audio.bit_rate = 96_000
        background = _background(spec)
        track = _tone_track(spec) if spec.has_audio else None
        audio_start = round(spec.audio_offset_seconds * spec.sample_rate)
        audio_cursor = 0  # samples of ``track`` already sent
        chunk = 1024
        for index in range(spec.num_frames):
            frame = av.VideoFrame.from_ndarray(_frame_pixels(spec, index, background), format="rgb24")
            frame.pts = index
            for packet in video.encode(frame):
                container.mux(packet)
            # Interleave audio up to this frame's time, as a real muxer input would be.
            if audio is not None and track is not None:
                until = int((index + 1) / spec.fps * spec.sample_rate) - audio_start
                while audio_cursor < min(until, track.shape[1]):
                    piece = track[:, audio_cursor : audio_cursor + chunk]
                    aframe = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(piece), format="fltp", layout=spec.audio_layout
                    )
                    aframe.sample_rate = spec.sample_rate
                    aframe.pts = audio_start + audio_cursor
                    for packet in audio.encode(aframe):
                        container.mux(packet)
                    audio_cursor += piece.shape[1]
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            for packet in audio.encode():
                container.mux(packet)
    return buffer.getvalue()


def _image_bytes(item_idx: int, kind: tuple[str, str, tuple[int, int]]) -> bytes:
    mode, fmt, (width, height) = kind
    canvas = np.full((height, width, 3), 128, np.uint8)
    canvas[:, : width // 3] = (40, 160, 90)
    draw_code(canvas, item_idx)
    rgb = Image.fromarray(canvas, "RGB")
    if mode == "I;16":
        # 16-bit grey: full 0..65535 range, so a loader that clips at 255 fails the read.
        grey = np.asarray(rgb.convert("L")).astype(np.uint16) * 257
        image = Image.fromarray(grey)  # uint16 -> mode "I;16"
    elif mode == "P":
        image = rgb.quantize(colors=16)
    elif mode in ("RGBA", "LA"):
        base = rgb.convert(mode[:-1])
        alpha = Image.fromarray(np.where(canvas[..., 0] == WHITE, 255, 180).astype(np.uint8), "L")
        base.putalpha(alpha)
        image = base
    else:
        image = rgb.convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return out.getvalue()


def _wit_features(item_idx: int, languages: tuple[str, ...]) -> dict[str, list[Any]]:
    def text(kind: str, lang: str, k: int) -> str | None:
        # A few fields are null, as in WIT: every third row loses the reference
        # caption of its last language, every fourth its section title.
        if kind == "caption" and item_idx % 3 == 2 and k == len(languages) - 1:
            return None
        if kind == "section" and item_idx % 4 == 1:
            return None
        return f"{kind} {item_idx} {lang}"

    fields: dict[str, list[Any]] = {str(f): [] for f in WitField}
    for k, lang in enumerate(languages):
        values: dict[WitField, Any] = {
            WitField.LANGUAGE: lang,
            WitField.PAGE_URL: f"https://{lang}.wikipedia.org/wiki/Item_{item_idx}",
            WitField.PAGE_TITLE: text("page", lang, k),
            WitField.SECTION_TITLE: text("section", lang, k),
            WitField.HIERARCHICAL_SECTION_TITLE: f"page {item_idx} {lang} / section {item_idx} {lang}",
            WitField.CAPTION_REFERENCE_DESCRIPTION: text("caption", lang, k),
            WitField.CAPTION_ALT_TEXT_DESCRIPTION: text("alt", lang, k),
            WitField.CAPTION_TITLE_AND_REFERENCE_DESCRIPTION: text("titled caption", lang, k),
            WitField.CONTEXT_PAGE_DESCRIPTION: text("page body", lang, k),
            WitField.CONTEXT_SECTION_DESCRIPTION: text("section body", lang, k),
            WitField.ATTRIBUTION_PASSES_LANG_ID: k == 0,
            WitField.IS_MAIN_IMAGE: k == 0,
            WitField.PAGE_CHANGED_RECENTLY: False,
        }
        for name, value in values.items():
            fields[str(name)].append(value)
    return fields


def _subtitles(item_idx: int, start_second: int, video_seconds: int) -> tuple[str | None, str]:
    """YAML of ``{"<absolute seconds>": text}`` for the whole video, and its kind."""
    kind = ("lines", "lines", "lines", "null", "lines", "empty", "list_values")[item_idx % 7]
    if kind == "null":
        return None, kind
    if kind == "empty":
        return "", kind
    lines: dict[str, Any] = {}
    for second in range(video_seconds):
        key = f"{second + 0.5:.1f}"
        lines[key] = [subtitle_text(second)] if kind == "list_values" else subtitle_text(second)
    return yaml.safe_dump(lines, sort_keys=False, allow_unicode=True), kind


def _row(
    item_idx: int, seed: int, with_thumbnail: bool, real: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One row; ``real``: the index of its ``REALWORLD_VARIANTS`` clip (else the variant
    cycles through ``VARIANTS`` by ``item_idx``)."""
    rng = np.random.default_rng([seed, item_idx])
    if real is None:
        spec = VARIANTS[item_idx % len(VARIANTS)]
        clip = encode_clip(spec)
        clip_truth = dataclasses.asdict(spec)
    else:
        clip, clip_truth = encode_real_clip(REALWORLD_VARIANTS[real])
    duration_seconds = float(clip_truth["duration_seconds"])
    languages = _LANGUAGE_SETS[item_idx % len(_LANGUAGE_SETS)]
    image_kind = _IMAGE_KINDS[item_idx % len(_IMAGE_KINDS)]
    start_second = int(rng.integers(0, 600)) if item_idx % 5 else 0
    video_seconds = start_second + int(np.ceil(duration_seconds)) + 40
    subtitles, subtitle_kind = _subtitles(item_idx, start_second, video_seconds)
    row: dict[str, Any] = {
        str(Column.IMAGE): {"bytes": _image_bytes(item_idx, image_kind), "path": None},
        str(Column.IMAGE_URL): f"https://upload.wikimedia.org/sample/{item_idx}.{image_kind[1].lower()}",
        str(Column.ITEM_IDX): item_idx,
        str(Column.WIT_FEATURES): _wit_features(item_idx, languages),
        str(Column.WIT_IDX): 1000 + item_idx,
        str(Column.YOUTUBE_TITLE_TEXT): f"youtube title {item_idx}",
        str(Column.YOUTUBE_DESCRIPTION_TEXT): f"youtube description {item_idx}",
        str(Column.YOUTUBE_VIDEO_CONTENT): clip,
        str(Column.YOUTUBE_VIDEO_STARTING_TIME): str(start_second),
        str(Column.YOUTUBE_SUBTITLE_TEXT): subtitles,
        str(Column.YOUTUBE_VIDEO_SIZE): len(clip),
        # Never opened by tali: a row must not make us read the local filesystem.
        str(Column.YOUTUBE_VIDEO_FILE_PATH): f"/data/videos/{item_idx:05d}.mp4",
    }
    if with_thumbnail:
        row[str(Column.YOUTUBE_THUMBNAIL)] = {
            "bytes": _image_bytes(item_idx, ("RGB", "JPEG", (480, 360))),
            "path": None,
        }
    truth = {
        **clip_truth,
        "item_idx": item_idx,
        "start_second": start_second,
        "video_seconds": video_seconds,
        "languages": list(languages),
        "image_mode": image_kind[0],
        "image_format": image_kind[1],
        "image_size": list(image_kind[2]),
        "subtitle_kind": subtitle_kind,
        "clip_bytes": len(clip),
    }
    return row, truth


def _schema(with_thumbnail: bool) -> pa.Schema:
    if not with_thumbnail:
        return TALI_SCHEMA
    return TALI_SCHEMA.append(pa.field(str(Column.YOUTUBE_THUMBNAIL), TALI_SCHEMA.field("image").type))


def write_dataset(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    splits: dict[str, tuple[int, int]] | None = None,
    rows_per_group: int = 3,
    with_thumbnail: bool = False,
    realworld: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Generate the dataset into ``path`` atomically (built aside, then renamed).

    ``progress(rows_done, rows_total)`` is called as each row's media is encoded.

    ``splits`` maps a split to ``(rows, shards)``; the default is 16 train rows
    in 2 shards, 4 val and 4 test rows in 1 shard each, every shard with
    several row groups of ``rows_per_group`` rows. ``realworld`` adds the split
    ``realworld``: one row per ``REALWORLD_VARIANTS`` clip, numbered after the others.
    """
    splits = dict(splits or {"train": (16, 2), "val": (4, 1), "test": (4, 1)})
    if realworld:
        splits["realworld"] = (len(REALWORLD_VARIANTS), 1)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tali-sample-", dir=target.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private
        (staging / "data").mkdir()
        truth: dict[str, Any] = {
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "rows_per_group": rows_per_group,
            "with_thumbnail": with_thumbnail,
            "rows": {},
            "splits": {},
        }
        schema = _schema(with_thumbnail)
        layout = []  # (split, shard name, item ids)
        item_idx = 0
        for split, (num_rows, num_shards) in splits.items():
            bounds = np.linspace(0, num_rows, num_shards + 1).round().astype(int)
            for shard in range(num_shards):
                count = int(bounds[shard + 1] - bounds[shard])
                name = f"{split}-{shard:05d}-of-{num_shards:05d}.parquet"
                layout.append((split, name, list(range(item_idx, item_idx + count))))
                item_idx += count
        # Encoding dominates (x264): one process per core roughly halves the build.
        workers = max(1, min(os.cpu_count() or 1, 4))
        context = multiprocessing.get_context("spawn")
        real = [
            i - (item_idx - len(REALWORLD_VARIANTS)) if realworld and split == "realworld" else None
            for split, _, items in layout
            for i in items
        ]
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            with main_not_rerun(_row):  # workers start during submit(); a plain script is not re-run
                futures = [pool.submit(_row, i, seed, with_thumbnail, real[i]) for i in range(item_idx)]
            for done, _ in enumerate(as_completed(futures), 1):
                if progress is not None:
                    progress(done, item_idx)
            built = [f.result() for f in futures]
        for split, name, items in layout:
            rows = []
            for i in items:
                row, row_truth = built[i]
                row_truth["split"] = split
                row_truth["shard"] = name
                truth["rows"][str(i)] = row_truth
                rows.append(row)
            table = pa.Table.from_pylist(rows, schema=schema)
            pq.write_table(table, staging / "data" / name, row_group_size=rows_per_group)
            entry = truth["splits"].setdefault(split, {"rows": 0, "files": []})
            entry["rows"] += len(items)
            entry["files"].append(f"data/{name}")
        (staging / "truth.json").write_text(json.dumps(truth, indent=1))
        # One exchange: a concurrent reader of a forced rebuild sees the old dataset or the new one,
        # never some of the shards (rmtree, then rename, showed it 3, 2, 1, 0 of 4).
        publish_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
