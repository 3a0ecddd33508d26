"""Bytes the viewer sends: byte ranges of a clip, PNG images, WAV audio, and the whole
clip's audio as a waveform envelope and a spectrogram image.

Sizes and units: audio is analysed mono at :data:`ANALYSIS_RATE` Hz; a waveform is
``columns`` (min, max) pairs in [-1, 1]; a spectrogram is ``[freq bins, columns]`` dB,
row 0 the lowest frequency, bins ``ANALYSIS_RATE / N_FFT`` Hz apart.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tali.errors import TaliError

__all__ = [
    "ANALYSIS_RATE",
    "N_FFT",
    "RangeNotSatisfiable",
    "byte_range",
    "envelope",
    "png_bytes",
    "spectrogram_db",
    "spectrogram_png",
    "wav_float32",
]

ANALYSIS_RATE = 16_000
N_FFT = 512
#: One range of a range set (RFC 9110 14.1.1): ``first-last``, ``first-`` or ``-suffix``; ASCII only.
_RANGE = re.compile(r"^([0-9]*)-([0-9]*)$", re.ASCII)
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


class RangeNotSatisfiable(TaliError, ValueError):
    """A ``Range`` header that selects no byte of the body (HTTP 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive ``(first, last)`` byte of a single ``bytes=`` range, or ``None`` to send the
    whole body (no header, another unit, or several well-formed ranges: RFC 9110 lets a
    server ignore those). A ``bytes=`` header that is not a well-formed range set, or whose
    range selects no byte, raises :class:`RangeNotSatisfiable` (HTTP 416): never a 500.
    Hand-written because Starlette's range support is for files on disk, and the clip is
    bytes inside a parquet row."""
    if header is None:
        return None
    text = header.strip()
    unit, equals, spec = text.partition("=")
    if not text:
        return None
    if not equals or unit.strip().lower() != "bytes":
        if equals and _TOKEN.match(unit.strip()):
            return None  # another unit: ignored
        raise RangeNotSatisfiable(f"malformed Range header {header[:60]!r}")
    ranges = [part.strip() for part in spec.split(",")]
    if len(spec) > 1000 or not all(_RANGE.match(part) and part != "-" for part in ranges):
        raise RangeNotSatisfiable(f"malformed Range header {header[:60]!r}")
    if len(ranges) > 1:
        return None
    first_text, last_text = _RANGE.match(ranges[0]).groups()  # type: ignore[union-attr]
    if not first_text:  # suffix: the last N bytes
        length = _bounded_int(last_text)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(f"range {header[:60]!r} selects no byte of {size}")
        return max(0, size - length), size - 1
    first = _bounded_int(first_text)
    last = _bounded_int(last_text) if last_text else size - 1
    if first >= size or last < first:
        raise RangeNotSatisfiable(f"range {header[:60]!r} selects no byte of {size}")
    return first, min(last, size - 1)


def _bounded_int(digits: str) -> int:
    """ASCII digits as an int, at most 10**18 (a 5,000-digit number would make int() raise)."""
    digits = digits.lstrip("0") or "0"
    return 10**18 if len(digits) > 18 else int(digits)


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 ``[H, W, 3]`` (or ``[3, H, W]``) to a lossless PNG, so a frame reads back exactly."""
    array = np.asarray(pixels)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = np.moveaxis(array, 0, -1)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def wav_float32(samples: np.ndarray, sample_rate: int) -> bytes:
    """Mono float32 samples as a WAV of 32-bit IEEE floats: the loader's values, unrounded
    (the stdlib ``wave`` module writes integer PCM only)."""
    data = np.ascontiguousarray(samples, dtype="<f4").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = struct.pack("<HHIIHH", 3, 1, sample_rate, sample_rate * 4, 4, 32)  # 3 = IEEE float
    return (
        header + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )


def envelope(samples: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of each of ``columns`` equal stretches: float32 ``[columns]`` each."""
    n = samples.size
    if n == 0:
        zeros = np.zeros(columns, np.float32)
        return zeros, zeros.copy()
    # Fewer samples than columns: a column repeats the sample it starts on.
    starts = np.minimum(np.linspace(0, n, columns + 1).astype(np.int64)[:-1], n - 1)
    return (
        np.minimum.reduceat(samples, starts).astype(np.float32),
        np.maximum.reduceat(samples, starts).astype(np.float32),
    )


def spectrogram_db(samples: np.ndarray, columns: int, *, n_fft: int = N_FFT) -> np.ndarray:
    """Magnitude in dB (re full scale) of ``columns`` Hann-windowed FFTs centred on equal
    steps through the clip: float32 ``[n_fft // 2 + 1, columns]``."""
    padded = np.pad(np.asarray(samples, np.float32), (n_fft // 2, n_fft // 2))
    centres = np.linspace(0, max(samples.size - 1, 0), columns).round().astype(np.int64)
    frames = padded[centres[:, None] + np.arange(n_fft)[None, :]]
    window = np.hanning(n_fft).astype(np.float32)
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1)) / (window.sum() / 2)
    return (20 * np.log10(np.maximum(magnitude, 1e-6))).T.astype(np.float32)


@dataclass(frozen=True)
class _Colormap:
    """A perceptual dark-to-bright map (anchors of matplotlib's magma), brightness increasing."""

    anchors: tuple[tuple[int, int, int], ...] = (
        (0, 0, 4),
        (59, 15, 112),
        (140, 41, 129),
        (222, 73, 104),
        (254, 159, 109),
        (252, 253, 191),
    )

    def table(self) -> np.ndarray:
        points = np.linspace(0, 255, len(self.anchors))
        anchors = np.asarray(self.anchors, np.float64)
        return np.stack([np.interp(np.arange(256), points, anchors[:, c]) for c in range(3)], 1).astype(
            np.uint8
        )


_LUT = _Colormap().table()


def spectrogram_png(db: np.ndarray, *, dynamic_range_db: float = 80.0) -> bytes:
    """A spectrogram image: low frequencies at the bottom, the loudest bin brightest and
    anything ``dynamic_range_db`` below it black."""
    top = float(db.max()) if db.size else 0.0
    scaled = np.clip((db - (top - dynamic_range_db)) / dynamic_range_db, 0, 1)
    levels = np.round(scaled[::-1] * 255).astype(np.uint8)
    return png_bytes(_LUT[levels])
