"""Machine-readable ground truth: codes drawn into frames and images, tones in audio.

Frames and images carry a 4x4 grid of black/white cells in the centre of
their central square: 12 bits of payload (frame index, or item id for images)
and a 4-bit check. The central square survives every standard crop (short
side scaled, centre cropped), and cells a quarter of the square wide survive
H.264 and downscaling to 112 px, so a pipeline's output can be read back.

Audio carries one pure tone per clip second: ``tone_hz(s) = 300 + 100 * s``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tali.errors import TaliDataError

__all__ = [
    "CODE_BITS",
    "GRID",
    "CodeUnreadable",
    "dominant_hz",
    "draw_code",
    "read_code",
    "read_frame_index",
    "read_image_code",
    "second_of_tone",
    "subtitle_text",
    "tone_hz",
    "tone_seconds",
]

GRID = 4
PAYLOAD_BITS = 12
CHECK_BITS = 4
CODE_BITS = PAYLOAD_BITS + CHECK_BITS
#: Fraction of the central square (per side) the code grid occupies; the rest
#: is a frame: red band above, blue band below (lets tests check channel order).
CODE_FRACTION = 0.8
WHITE, BLACK = 235, 16

TONE_BASE_HZ = 300.0
TONE_STEP_HZ = 100.0


class CodeUnreadable(TaliDataError):
    """The grid did not decode to a valid code: the pixels are not from a coded frame."""


def _check(payload: int) -> int:
    # A 4-bit check that changes when any single payload bit flips.
    return (payload ^ (payload >> 4) ^ (payload >> 8) ^ 0b1010) & 0xF


def _to_bits(payload: int) -> np.ndarray:
    if not 0 <= payload < (1 << PAYLOAD_BITS):
        raise ValueError(f"payload {payload} does not fit in {PAYLOAD_BITS} bits")
    word = (payload << CHECK_BITS) | _check(payload)
    return np.array([(word >> (CODE_BITS - 1 - k)) & 1 for k in range(CODE_BITS)], dtype=np.uint8)


def _square(height: int, width: int) -> tuple[int, int, int]:
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def draw_code(canvas: np.ndarray, payload: int) -> None:
    """Draw ``payload`` into ``canvas`` (``[H, W, 3]`` uint8, modified in place)."""
    height, width = canvas.shape[:2]
    top, left, side = _square(height, width)
    margin = round(side * (1 - CODE_FRACTION) / 2)
    inner = side - 2 * margin
    canvas[top : top + margin, left : left + side] = (200, 30, 30)  # red band
    canvas[top + side - margin : top + side, left : left + side] = (30, 30, 200)  # blue band
    bits = _to_bits(payload)
    edges = np.linspace(0, inner, GRID + 1).round().astype(int)
    for k, bit in enumerate(bits):
        r, c = divmod(k, GRID)
        y0, y1 = top + margin + edges[r], top + margin + edges[r + 1]
        x0, x1 = left + margin + edges[c], left + margin + edges[c + 1]
        canvas[y0:y1, x0:x1] = WHITE if bit else BLACK


def _as_hwc(pixels: Any) -> np.ndarray:
    """Accept ``[H, W, 3]``, ``[3, H, W]``, ``[H, W]`` arrays/tensors or a PIL image."""
    if hasattr(pixels, "convert") and hasattr(pixels, "size"):  # PIL
        pixels = np.asarray(pixels.convert("RGB"))
    elif hasattr(pixels, "detach"):  # torch
        pixels = pixels.detach().cpu().numpy()
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    elif arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))
    if arr.ndim != 3:
        raise ValueError(f"expected one image, got shape {arr.shape}")
    arr = arr.astype(np.float32)
    if arr.max() <= 1.0 + 1e-6 and arr.dtype.kind == "f" and np.asarray(pixels).dtype.kind == "f":
        arr = arr * 255.0
    return arr


def read_code(pixels: Any) -> int:
    """Read the payload drawn by :func:`draw_code`, from a full frame or a centre crop."""
    arr = _as_hwc(pixels)
    luma = arr[..., :3].mean(axis=2) if arr.shape[2] >= 3 else arr[..., 0]
    height, width = luma.shape
    top, left, side = _square(height, width)
    margin = side * (1 - CODE_FRACTION) / 2
    cell = (side - 2 * margin) / GRID
    word = 0
    for k in range(CODE_BITS):
        r, c = divmod(k, GRID)
        # Read the middle half of each cell: its edges blur under scaling and compression.
        y0 = int(top + margin + (r + 0.25) * cell)
        y1 = int(top + margin + (r + 0.75) * cell)
        x0 = int(left + margin + (c + 0.25) * cell)
        x1 = int(left + margin + (c + 0.75) * cell)
        bit = luma[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)].mean() > 128
        word = (word << 1) | int(bit)
    payload, check = word >> CHECK_BITS, word & 0xF
    if _check(payload) != check:
        raise CodeUnreadable(f"no valid code in these pixels (read word {word:#06x})")
    return payload


def read_frame_index(frame: Any) -> int:
    """The index (0-based, in the clip's own frame rate) of the frame these pixels show."""
    return read_code(frame)


def read_image_code(image: Any) -> int:
    """The ``item_idx`` a sample-dataset Wikipedia image was drawn for."""
    return read_code(image)


def tone_hz(second: int) -> float:
    """Frequency of the tone that fills clip second ``second``."""
    return TONE_BASE_HZ + TONE_STEP_HZ * second


def second_of_tone(hz: float) -> int:
    """Inverse of :func:`tone_hz`, rounded to the nearest second."""
    return round((hz - TONE_BASE_HZ) / TONE_STEP_HZ)


def dominant_hz(samples: Any, sample_rate: int) -> float:
    """The strongest frequency in ``samples`` (1-D), by a Hann-windowed FFT."""
    x = np.asarray(samples.detach().cpu().numpy() if hasattr(samples, "detach") else samples)
    x = x.astype(np.float64).reshape(-1)
    if x.size < 16:
        raise ValueError("need at least 16 samples to estimate a frequency")
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size), n=max(x.size, 1 << 14)))
    freqs = np.fft.rfftfreq(max(x.size, 1 << 14), 1.0 / sample_rate)
    return float(freqs[int(np.argmax(spectrum))])


def tone_seconds(
    samples: Any, sample_rate: int, start_seconds: float, *, chunk: float = 0.25
) -> list[tuple[float, int | None]]:
    """Read the clip second in each ``chunk``-long piece of a waveform.

    Returns ``(chunk_centre_seconds, second_or_None)`` for chunks that lie
    inside one clip second (chunks that straddle a boundary are skipped);
    ``None`` marks a silent chunk.
    """
    x = np.asarray(samples.detach().cpu().numpy() if hasattr(samples, "detach") else samples)
    x = x.reshape(-1).astype(np.float64)
    n = round(chunk * sample_rate)
    out: list[tuple[float, int | None]] = []
    for begin in range(0, x.size - n + 1, n):
        t_begin = start_seconds + begin / sample_rate
        t_end = t_begin + chunk
        # Margins: an encoder smears each tone change over a few milliseconds.
        if np.floor(t_begin + 0.02) != np.floor(t_end - 0.02 - 1e-9):
            continue
        piece = x[begin : begin + n]
        if np.sqrt(np.mean(piece**2)) < 1e-3:
            out.append(((t_begin + t_end) / 2, None))
        else:
            out.append(((t_begin + t_end) / 2, second_of_tone(dominant_hz(piece, sample_rate))))
    return out


def subtitle_text(absolute_second: int) -> str:
    """The text of the sample dataset's subtitle line at ``absolute_second``."""
    return f"second {absolute_second}"
