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


def read(ctx: ReadContext) -> dict[str, ImagePixels]:
    cfg = ctx.config
    if not cfg.wants(S.WIKIPEDIA_CAPTION_IMAGE):
        return {}
    image = row_field(ctx.row, Column.IMAGE, ctx.item_idx)
    data = image.get(str(ImageField.BYTES)) if isinstance(image, Mapping) else image
    with timed(Stage.IMAGE_DECODE):
        pil = decode_image(
            data,
            size=cfg.image.size,
            max_pixels=cfg.image.max_pixels,
            max_jpeg_scans=cfg.image.max_jpeg_scans,
            max_seconds=cfg.image.max_decode_seconds,
            item_idx=ctx.item_idx,
            field=str(Column.IMAGE),
        )
        pixels = pixels_out(np.asarray(pil), cfg.image.output)
    return {S.WIKIPEDIA_CAPTION_IMAGE.value: ImagePixels(pixels)}


def placeholder(config: TaliConfig) -> dict[str, ImagePixels]:
    if not config.wants(S.WIKIPEDIA_CAPTION_IMAGE):
        return {}
    size = config.image.size or 224
    return {S.WIKIPEDIA_CAPTION_IMAGE.value: ImagePixels(blank_pixels((3, size, size), config.image.output))}
