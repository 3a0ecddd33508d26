"""Decode a Wikipedia image of any mode into RGB at the output size.

Loaders meet RGB and CMYK JPEGs, RGBA/LA/palette PNGs, 8- and 16-bit grey.
Everything becomes 8-bit RGB: alpha is dropped (as CLIP's ``convert("RGB")``
does), 16-bit grey is scaled by its full range rather than clipped at 255.
The pixel count is checked from the header, before any pixel is decoded, so
a decompression bomb costs nothing.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

from tali.errors import TaliImageError

__all__ = ["decode_image", "resize_and_crop", "to_rgb_image"]

_HIGH_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


def to_rgb_image(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB."""
    if image.mode in _HIGH_BIT_MODES:
        arr = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        grey = np.clip(arr * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image if image.mode == "RGB" else image.convert("RGB")


def resize_and_crop(image: Image.Image, size: int | None) -> Image.Image:
    """Short side to ``size`` (bicubic), then the centre ``size x size`` square."""
    if size is None:
        return image
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def decode_image(
    data: bytes | None,
    *,
    size: int | None,
    max_pixels: int,
    item_idx: int | None = None,
    field: str = "image",
) -> Image.Image:
    """Bytes of an encoded image to an RGB PIL image of ``size x size``."""
    if not data:
        raise TaliImageError("image bytes are empty or null", item_idx=item_idx, field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise TaliImageError(
                    f"image is {width}x{height}, over the {max_pixels}-pixel limit",
                    item_idx=item_idx,
                    field=field,
                )
            if size is not None and image.format == "JPEG":
                # Let libjpeg decode at a reduced DCT scale when the image is far
                # larger than needed; draft never goes below the requested size.
                image.draft("RGB", (size * 2, size * 2))
            image.load()
            return resize_and_crop(to_rgb_image(image), size)
    except TaliImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MemoryError, EOFError) as exc:
        raise TaliImageError(
            f"cannot decode {field}: {type(exc).__name__}: {exc}", item_idx=item_idx, field=field
        ) from exc
