"""Peer loaders that produce what ``tali``'s video+audio config produces, for the same rows.

Every peer decodes *the same frames and audio*: a :class:`Plan` per ``item_idx``
(window start and length, and the clip times of the frames ``tali`` chose) is
computed once, outside the timings, from a ``tali`` pass over the rows. Output of
each sample, as ``tali``'s::

    frames    uint8 [N, 3, S, S]   short side scaled to S, centre crop
    waveform  float32 [round(d * sr)] mono at sr, zero-padded past the clip end

- :class:`TorchCodecPeer`: torchcodec 0.13 ``VideoDecoder`` with its in-decoder
  ``Resize``/``CenterCrop`` transforms and ``AudioDecoder`` resampling to mono sr
  (FFmpeg does the work, as in ``tali``), over the same parquet row groups.
- :class:`HFStreamingPeer`: HF ``datasets`` streaming of the same shards, decoding
  with its own ``Video``/``Audio`` features (torchcodec underneath, full resolution)
  and resizing in torch (bicubic, antialiased), the path a ``datasets`` user writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
import torch.utils.data

from tali import TaliConfig, TaliDataset

VIDEO_COLUMN = "youtube_video_content"


@dataclass(frozen=True)
class Plan:
    """What to decode for one row: clip-time window and frame times (seconds)."""

    item_idx: int
    start_seconds: float
    duration_seconds: float
    frame_seconds: tuple[float, ...]


def plans_from_tali(dataset: TaliDataset) -> dict[int, Plan]:
    """Run ``tali`` once over the rows and record its choices (not timed)."""
    plans = {}
    for i in range(len(dataset)):
        sample = dataset[i]
        window = sample["window"]
        pts = sample["youtube_content_video"]["pts_seconds"].tolist()
        plans[sample["item_idx"]] = Plan(
            item_idx=sample["item_idx"],
            start_seconds=window["start_seconds"],
            duration_seconds=window["duration_seconds"],
            # A frame is played over [pts, pts + 1/fps): ask a hair after pts so that
            # float rounding of pts never lands on the previous frame (seen on 2 of 16 rows).
            frame_seconds=tuple(float(t) + 1e-4 for t in pts if np.isfinite(t)),
        )
    return plans


def short_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """``(height, width)`` with the short side at ``size`` (tali's rule, see decode/video.py)."""
    if width <= height:
        return max(size, round(height * size / width)), size
    return size, max(size, round(width * size / height))


def _fit(waveform: torch.Tensor, start: float, pts: float, length: int, sample_rate: int) -> torch.Tensor:
    """Mono waveform placed at its own start time into ``length`` samples from ``start``."""
    out = torch.zeros(length, dtype=torch.float32)
    offset = max(0, round((pts - start) * sample_rate))
    data = waveform.reshape(-1)[: max(0, length - offset)]
    out[offset : offset + data.numel()] = data
    return out


def _pad_frames(frames: torch.Tensor, n: int) -> torch.Tensor:
    if frames.shape[0] >= n:
        return frames[:n]
    pad = frames[-1:].expand(n - frames.shape[0], *frames.shape[1:])
    return torch.cat([frames, pad])


class RowGroups:
    """Reads the projected columns of parquet shards one row group at a time (like tali)."""

    def __init__(self, files: Sequence[str], columns: Sequence[str]) -> None:
        self.files, self.columns = list(files), list(columns)
        self.refs = []
        for f, path in enumerate(self.files):
            meta = pq.ParquetFile(path).metadata
            start = 0
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                self.refs.extend((f, g, start + k, k) for k in range(n))
                start += n
        self._cache: tuple[tuple[int, int], Any] | None = None
        self._handles: dict[int, pq.ParquetFile] = {}

    def __len__(self) -> int:
        return len(self.refs)

    def row(self, index: int) -> dict[str, Any]:
        f, g, _, k = self.refs[index]
        if self._cache is None or self._cache[0] != (f, g):
            handle = self._handles.get(f) or self._handles.setdefault(f, pq.ParquetFile(self.files[f]))
            self._cache = ((f, g), handle.read_row_group(g, columns=self.columns))
        return self._cache[1].slice(k, 1).to_pylist()[0]


class PlannedRows(torch.utils.data.Dataset):
    """Map-style base of the comparison loaders: the clip column of each row and the
    window/frames ``tali`` planned for it, so every loader decodes the same moments."""

    def __init__(self, files: Sequence[str], plans: dict[int, Plan], config: TaliConfig) -> None:
        self.rows = RowGroups(files, ["item_idx", VIDEO_COLUMN])
        self.plans, self.config = plans, config

    def __len__(self) -> int:
        return len(self.rows)


class TorchCodecPeer(PlannedRows):
    """torchcodec decoding the planned frames and audio of each row (map-style)."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        from torchcodec.decoders import AudioDecoder, VideoDecoder
        from torchcodec.transforms import CenterCrop, Resize

        row = self.rows.row(index)
        plan = self.plans[row["item_idx"]]
        data, size = row[VIDEO_COLUMN], self.config.video.size
        sr = self.config.audio.sample_rate
        # "approximate" seeks from the container index like tali does (no full scan).
        meta = VideoDecoder(data, seek_mode="approximate").metadata
        h, w = short_side_size(meta.width, meta.height, size)
        video = VideoDecoder(
            data, seek_mode="approximate", transforms=[Resize((h, w)), CenterCrop((size, size))]
        )
        frames = video.get_frames_played_at(list(plan.frame_seconds)).data
        length = round(plan.duration_seconds * sr)
        try:
            audio = AudioDecoder(data, sample_rate=sr, num_channels=1).get_samples_played_in_range(
                plan.start_seconds, plan.start_seconds + plan.duration_seconds
            )
            waveform = _fit(audio.data, plan.start_seconds, audio.pts_seconds, length, sr)
        except (RuntimeError, ValueError):  # no audio stream: zeros, like tali's on_missing="zeros"
            waveform = torch.zeros(length, dtype=torch.float32)
        return {
            "item_idx": row["item_idx"],
            "frames": _pad_frames(frames, self.config.video.num_frames),
            "waveform": waveform,
        }


def _resize_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 NCHW at full size -> uint8 [N, 3, size, size]: what a torch user writes."""
    h, w = short_side_size(frames.shape[-1], frames.shape[-2], size)
    scaled = F.interpolate(frames.float(), size=(h, w), mode="bicubic", antialias=True, align_corners=False)
    top, left = (h - size) // 2, (w - size) // 2
    return scaled[..., top : top + size, left : left + size].round_().clamp_(0, 255).to(torch.uint8)


class HFStreamingPeer(torch.utils.data.IterableDataset):
    """HF ``datasets`` streaming over the same shards, with its own media features.

    The dataset object is built in each worker (``datasets`` splits shards across
    DataLoader workers itself), so it is created lazily in ``__iter__``.
    """

    def __init__(self, files: Sequence[str], plans: dict[int, Plan], config: TaliConfig) -> None:
        self.files, self.plans, self.config = list(files), plans, config
        self._length = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def __len__(self) -> int:
        return self._length

    def _stream(self) -> Any:
        from datasets import Video, load_dataset

        ds = load_dataset("parquet", data_files={"rows": self.files}, split="rows", streaming=True)
        # decode=False keeps {"bytes", "path"}: the one column feeds both media features.
        # Inside a DataLoader worker, datasets itself gives each worker whole shards.
        return ds.select_columns(["item_idx", VIDEO_COLUMN]).cast_column(VIDEO_COLUMN, Video(decode=False))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from datasets import Audio, Video

        video_feature = Video(seek_mode="approximate")
        sr = self.config.audio.sample_rate
        audio_feature = Audio(sampling_rate=sr, num_channels=1)
        size, n = self.config.video.size, self.config.video.num_frames
        for row in self._stream():
            plan = self.plans[row["item_idx"]]
            value = row[VIDEO_COLUMN]
            frames = video_feature.decode_example(value).get_frames_played_at(list(plan.frame_seconds)).data
            length = round(plan.duration_seconds * sr)
            try:
                audio = audio_feature.decode_example(value).get_samples_played_in_range(
                    plan.start_seconds, plan.start_seconds + plan.duration_seconds
                )
                waveform = _fit(audio.data, plan.start_seconds, audio.pts_seconds, length, sr)
            except (RuntimeError, ValueError):
                waveform = torch.zeros(length, dtype=torch.float32)
            yield {
                "item_idx": row["item_idx"],
                "frames": _pad_frames(_resize_crop(frames, size), n),
                "waveform": waveform,
            }
