"""Image family: the Wikipedia image.

``wikipedia_caption_image``  :class:`ImagePixels`: pixels ``[3, S, S]`` (uint8 or float) or PIL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tali.clock import Stage, timed
from tali.config import TaliConfig
from tali.decode.image import decode_image
from tali.sample.base import ReadContext, blank_pixels, check_shape, pixels_out, row_field, shape_of
from tali.schema import Column, ImageField, SubModality

__all__ = ["SUBS", "ImagePixels", "placeholder", "read"]

S = SubModality
SUBS = (S.WIKIPEDIA_CAPTION_IMAGE,)


@dataclass(frozen=True)
class ImagePixels:
    pixels: Any

    def __post_init__(self) -> None:
        if isinstance(self.pixels, torch.Tensor):
            check_shape(
                self.pixels.ndim == 3 and self.pixels.shape[0] == 3, "pixels must be [3, H, W]", SUBS[0].value
            )

    def __repr__(self) -> str:
        return f"ImagePixels(pixels={shape_of(self.pixels)})"

    def to_dict(self) -> dict[str, Any]:
        return {"pixels": self.pixels}


def picture_bytes(value: Any) -> Any:
    """An image column's value (``{bytes, path}`` as ``datasets`` stores it, or raw bytes)."""
    return value.get(str(ImageField.BYTES)) if isinstance(value, Mapping) else value


def decode_picture(config: TaliConfig, data: Any, *, item_idx: int | None, field: Column) -> Any:
    """Encoded picture bytes -> the configured output (size, limits, layout): the Wikipedia
    image and a stored YouTube thumbnail go through this one path."""
    with timed(Stage.IMAGE_DECODE):
        pil = decode_image(
            data,
            size=config.image.size,
            max_pixels=config.image.max_pixels,
            max_jpeg_scans=config.image.max_jpeg_scans,
            max_seconds=config.image.max_decode_seconds,
            item_idx=item_idx,
            field=str(field),
        )
        return pixels_out(np.asarray(pil), config.image.output)


def read(ctx: ReadContext) -> dict[str, ImagePixels]:
    cfg = ctx.config
    if not cfg.wants(S.WIKIPEDIA_CAPTION_IMAGE):
        return {}
    data = picture_bytes(row_field(ctx.row, Column.IMAGE, ctx.item_idx))
    pixels = decode_picture(cfg, data, item_idx=ctx.item_idx, field=Column.IMAGE)
    return {S.WIKIPEDIA_CAPTION_IMAGE.value: ImagePixels(pixels)}


def placeholder(config: TaliConfig) -> dict[str, ImagePixels]:
    if not config.wants(S.WIKIPEDIA_CAPTION_IMAGE):
        return {}
    size = config.image.size or 224
    return {S.WIKIPEDIA_CAPTION_IMAGE.value: ImagePixels(blank_pixels((3, size, size), config.image.output))}
