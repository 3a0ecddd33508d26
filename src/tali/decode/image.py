"""Decode a Wikipedia image of any mode into RGB at the output size, within bounds.

Loaders meet RGB and CMYK JPEGs, RGBA/LA/palette PNGs, 8- and 16-bit grey.
Everything becomes 8-bit RGB: alpha is dropped (as CLIP's ``convert("RGB")``
does), 16-bit grey is scaled by its full range rather than clipped at 255.

One row must never stall or exhaust a worker, so every cost is bounded before
it is paid:

- only the formats TALI images come in are opened (:data:`IMAGE_FORMATS`);
  Pillow's other plugins (EPS runs Ghostscript on the bytes) are never tried;
- the pixel count is checked from the header, before any pixel is decoded;
- a JPEG's scans are counted from its markers before decoding (time is linear
  in scans; see :func:`count_jpeg_scans`), and decoding reads its bytes through
  a clock that stops it once ``max_seconds`` have passed;
- the resize computes only the output square (``resize(box=...)``), so an
  aspect-ratio bomb (1 x 40,000 pixels, short side to 224) costs ``size**2``
  pixels, not 224 x 8.96 M;
- 16-bit images are scaled to 8 bits a band of rows at a time;
- any exception decoding raises becomes a located ``TaliImageError``.
"""

from __future__ import annotations

import io
import time
import warnings

import numpy as np
from PIL import Image

from tali.errors import TaliError, TaliImageError

__all__ = ["IMAGE_FORMATS", "count_jpeg_scans", "decode_image", "resize_and_crop", "to_rgb_image"]

#: The Pillow formats a TALI image may be in (Wikimedia serves JPEG, PNG, GIF,
#: TIFF, WebP; BMP is cheap and harmless). "MPO" is how Pillow names camera JPEGs
#: with a multi-picture extension: the JPEG decoder. Anything else is refused
#: before a plugin looks at the bytes.
IMAGE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})

_HIGH_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
#: Rows per band when scaling a 16-bit image to 8 bits (8000 wide: 16 MB of float64).
_BAND_ROWS = 256


def _to_grey8(image: Image.Image) -> Image.Image:
    """16-bit / int32 / float grey to 8-bit ``L``, a band of rows at a time: a whole
    8000x8000 16-bit image in float64 is 512 MB, a band 16 MB."""
    width, height = image.size
    if image.mode.startswith("I;16"):
        peak = 65535.0
    else:
        low_high = image.getextrema()  # (min, max) for a single-band image
        peak = max(float(low_high[1]), 1.0)  # type: ignore[arg-type]
    out = np.empty((height, width), dtype=np.uint8)
    for top in range(0, height, _BAND_ROWS):
        band = image.crop((0, top, width, min(top + _BAND_ROWS, height)))
        arr = np.asarray(band, dtype=np.float64)
        out[top : top + arr.shape[0]] = np.clip(arr * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(out)


def to_rgb_image(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB."""
    if image.mode in _HIGH_BIT_MODES:
        return _to_grey8(image).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image if image.mode == "RGB" else image.convert("RGB")


def resize_and_crop(image: Image.Image, size: int | None) -> Image.Image:
    """Short side to ``size`` (bicubic), then the centre ``size x size`` square.

    Only the square is computed: the crop is mapped back to source coordinates
    and resized with ``box``, which samples exactly where resizing the whole image
    and cropping would (equal up to float rounding: at most 1 level on rare
    pixels). Its cost is ``size**2`` output pixels whatever the aspect ratio.
    """
    if size is None:
        return image
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) == (width, height):
        left, top = (width - size) // 2, (height - size) // 2
        return image.crop((left, top, left + size, top + size))
    left, top = (new_w - size) // 2, (new_h - size) // 2
    sx, sy = width / new_w, height / new_h
    box = (left * sx, top * sy, min((left + size) * sx, width), min((top + size) * sy, height))
    return image.resize((size, size), Image.Resampling.BICUBIC, box=box)


def count_jpeg_scans(data: bytes) -> int:
    """Start-of-scan markers in a JPEG, counted without decoding.

    Inside entropy-coded data every ``0xFF`` byte is followed by ``0x00`` or a
    restart marker, so ``FF DA`` occurs only as a real SOS marker or inside an
    APP segment (an EXIF thumbnail adds its own one scan): the count is exact or
    slightly high, never low. It costs one ``bytes.count`` (~0.1 ms per MB).
    """
    return data.count(b"\xff\xda")


class _ClockedReader(io.BytesIO):
    """The image bytes, read through a clock.

    Pillow's decoders pull their input in a Python loop (``ImageFile.load``, 64 KB
    a call), so a check on each read stops a slow decode between blocks without a
    thread or a subprocess. What one block can cost is bounded by the format
    checks (JPEG scans, pixel count).
    """

    def __init__(self, data: bytes, seconds: float | None, what: str) -> None:
        super().__init__(data)
        self._end = None if seconds is None else time.monotonic() + seconds
        self._seconds, self._what = seconds, what

    def read(self, size: int | None = -1, /) -> bytes:
        if self._end is not None and time.monotonic() > self._end:
            raise TimeoutError(f"decoding {self._what} took longer than the {self._seconds:g} s limit")
        return super().read(size)


def decode_image(
    data: bytes | None,
    *,
    size: int | None,
    max_pixels: int,
    max_jpeg_scans: int = 64,
    max_seconds: float | None = 10.0,
    item_idx: int | None = None,
    field: str = "image",
) -> Image.Image:
    """Bytes of an encoded image to an RGB PIL image of ``size x size``.

    Refused with a ``TaliImageError`` naming the row and field: formats other than
    :data:`IMAGE_FORMATS`, more than ``max_pixels`` pixels, a JPEG of more than
    ``max_jpeg_scans`` scans, a decode longer than ``max_seconds``, and anything
    the decoder itself rejects.
    """
    if not data:
        raise TaliImageError("image bytes are empty or null", item_idx=item_idx, field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(_ClockedReader(data, max_seconds, field), formats=IMAGE_FORMATS)
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise TaliImageError(
                    f"image is {width}x{height}, over the {max_pixels}-pixel limit",
                    item_idx=item_idx,
                    field=field,
                )
            if image.format in _JPEG_FORMATS:
                # A progressive JPEG's decode time is linear in its scans (libjpeg walks
                # every block once a scan, however few bytes the scan has: 20,000
                # repeated scans took 225 s). Real encoders write 1 (baseline) to ~10
                # (libjpeg's progression); counting markers is the cheapest bound.
                # Measured against the options: draft/reduce scale only the IDCT, not
                # the per-scan walk; a subprocess with a timeout costs a fork and a
                # copy of the pixels per image; a clock between reads alone is too
                # coarse, as one 64 KB block can hold ~1,800 tiny scans.
                scans = count_jpeg_scans(data)
                if scans > max_jpeg_scans:
                    raise TaliImageError(
                        f"JPEG has {scans} scans, over the {max_jpeg_scans}-scan limit",
                        item_idx=item_idx,
                        field=field,
                    )
                if size is not None:
                    # Let libjpeg decode at a reduced DCT scale when the image is far
                    # larger than needed; draft never goes below the requested size.
                    image.draft("RGB", (size * 2, size * 2))
            image.load()
            if image.mode in _HIGH_BIT_MODES or image.mode == "L":
                # Grey: resize the one band, then copy it to three (the same pixels as
                # converting first, at a third of the memory: 192 MB less at 8000x8000).
                grey = _to_grey8(image) if image.mode in _HIGH_BIT_MODES else image
                return resize_and_crop(grey, size).convert("RGB")
            return resize_and_crop(to_rgb_image(image), size)
    except TaliError:
        raise
    except Exception as exc:
        # Pillow's plugins raise whatever their parsers hit on hostile bytes (OSError,
        # SyntaxError, struct.error, OverflowError, IndexError, ZeroDivisionError,
        # MemoryError, ...); every one is this row's problem, never the loader's.
        reason = "not a supported image format" if isinstance(exc, Image.UnidentifiedImageError) else ""
        raise TaliImageError(
            f"cannot decode {field}: {reason or type(exc).__name__ + ': ' + str(exc)[:200]}",
            item_idx=item_idx,
            field=field,
        ) from exc
