"""What every modality reader shares: the read context, pixel output, row-field checks.

A reader is a module of :mod:`tali.sample` with ``SUBS`` (the sub-modalities it
produces), ``read(ctx) -> {name: output}``, ``placeholder(config) -> {name: output}``
and, when its output has times, ``retime(value, time_map)``. The transform, the
bad-row placeholder, the augmentation and ``tali.live`` all build a sample's
values through these, so the layout is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from tali.config import FrameOutput, TaliConfig
from tali.decode.clip import Clip
from tali.errors import TaliDataError, TaliSchemaError
from tali.schema import Column
from tali.window import Window

__all__ = ["ReadContext", "check_length", "pixels_out", "row_field", "shape_of", "start_seconds"]

Rng = Callable[[str], np.random.Generator]


@dataclass
class ReadContext:
    """One sample's inputs: the row, its ``item_idx``, the generator for a purpose, and
    (for clip-based readers) the open clip and the chosen window."""

    config: TaliConfig
    row: Mapping[str, Any]
    item_idx: int | None
    rng: Rng
    window: Window | None = None
    clip: Clip | None = None


def pixels_out(array: np.ndarray, output: FrameOutput, *, channels_first: bool = False) -> Any:
    """uint8 ``[..., H, W, 3]`` (images) or ``[..., 3, H, W]`` (decoded video
    frames, ``channels_first``) to the configured output: CHW tensor or PIL."""
    if output == "pil":
        hwc = np.moveaxis(array, -3, -1) if channels_first else array
        if hwc.ndim == 4:
            return [Image.fromarray(np.ascontiguousarray(a)) for a in hwc]
        return Image.fromarray(np.ascontiguousarray(hwc))
    chw = array if channels_first else np.moveaxis(array, -1, -3)
    tensor = torch.from_numpy(np.ascontiguousarray(chw))
    if output == "float":
        return tensor.to(torch.float32).div_(255.0)
    return tensor


def shape_of(value: Any) -> str:
    """``[N, 3, H, W] uint8`` for a tensor/array, ``N x PIL WxH`` for images: what a repr shows."""
    if isinstance(value, torch.Tensor | np.ndarray):
        return f"{list(value.shape)} {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, list):
        return f"{len(value)} x PIL" + (f" {value[0].size[0]}x{value[0].size[1]}" if value else "")
    if isinstance(value, Image.Image):
        return f"PIL {value.size[0]}x{value.size[1]}"
    return type(value).__name__


def check_shape(ok: bool, what: str, field: str) -> None:
    """Outputs are built by this package; a wrong shape is a bug in a reader or a stage."""
    if not ok:
        raise TaliDataError(f"{field}: {what}", field=field)


def row_field(row: Mapping[str, Any], column: Column, item_idx: int | None) -> Any:
    if str(column) not in row:
        raise TaliSchemaError(f"row has no {column} column", item_idx=item_idx, field=str(column))
    return row[str(column)]


def check_length(text: str, limit: int, item_idx: int | None, field: str) -> None:
    if len(text) > limit:
        raise TaliDataError(
            f"text is {len(text)} characters, over the {limit}-character limit",
            item_idx=item_idx,
            field=field,
        )


def start_seconds(row: Mapping[str, Any], item_idx: int | None) -> float:
    """The clip's start in its video (``youtube_video_starting_time``): subtitles are
    timed on the video, frames and audio on the clip."""
    raw = row.get(str(Column.YOUTUBE_VIDEO_STARTING_TIME))
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TaliDataError(
            f"start time {str(raw)[:40]!r} is not a number of seconds",
            item_idx=item_idx,
            field=str(Column.YOUTUBE_VIDEO_STARTING_TIME),
        ) from None
    if not np.isfinite(value) or value < 0:
        raise TaliDataError(
            f"start time {value} is not a finite, non-negative number of seconds",
            item_idx=item_idx,
            field=str(Column.YOUTUBE_VIDEO_STARTING_TIME),
        )
    return value


def blank_pixels(shape: tuple[int, ...], output: FrameOutput) -> Any:
    """Zeros of ``shape`` (``[N, 3, H, W]`` or ``[3, H, W]``) in the configured output."""
    if output == "pil":
        n = shape[0] if len(shape) == 4 else 1
        frames = [Image.new("RGB", (shape[-1], shape[-2])) for _ in range(n)]
        return frames if len(shape) == 4 else frames[0]
    return torch.zeros(shape, dtype=torch.float32 if output == "float" else torch.uint8)
