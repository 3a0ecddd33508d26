"""Resample mono float audio with swresample's own filter, as one matrix product.

Why not call swresample for every window: PyAV reaches it only through a
libavfilter graph (``av.AudioResampler``), measured at 0.45 ms to build and
1.2 ms to run for a 3 s window from 44.1 kHz to 16 kHz, where one GEMM over
the same filter takes 0.44 ms (``benchmarks/decode/bench_resample.py``).

The filter is not re-derived from a formula: it is read once per process and
rate pair from swresample's response to impulses (its output is linear and
periodic in the input position), and the edges follow swresample's rules: the
start is mirrored without the first sample, the end mirrored with the last
one, and the number of samples out is swresample's own count. The samples equal
swresample's to float rounding (``tests/test_decode_resample.py``).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import av
import numpy as np
import torch

__all__ = ["Polyphase", "mono_frame", "mono_resampler", "polyphase", "swr_frames", "swr_resample"]

#: Rate pairs whose reduced ratio needs more output phases than this are left to
#: swresample (it then interpolates between 1024 phases instead of using exact ones).
_MAX_PHASES = 1024
#: Outputs per matrix row at least: small phase counts (48 -> 16 kHz is 1 phase)
#: are grouped so the product stays a GEMM, not a matrix-vector product.
_MIN_BLOCK = 64
#: Blocks per matrix product: bounds the copy of the overlapping input windows
#: (1024 blocks of 44.1 kHz audio: 2.2 MB for 10 s of output).
_BLOCKS_PER_GEMM = 1024


def mono_resampler(out_rate: int) -> av.AudioResampler:
    """swresample (through PyAV's filter graph) to float mono at ``out_rate``."""
    return av.AudioResampler(format="flt", layout="mono", rate=out_rate)


def mono_frame(
    samples: np.ndarray, rate: int, pts: int = 0, time_base: Fraction | None = None
) -> av.AudioFrame:
    """Mono float samples as a PyAV frame stamped ``pts`` (in ``time_base``, default 1 / rate)."""
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, np.float32)[None], format="flt", layout="mono"
    )
    frame.sample_rate, frame.pts = rate, pts
    frame.time_base = time_base or Fraction(1, rate)
    return frame


def swr_frames(frame: av.AudioFrame, out_rate: int) -> list[av.AudioFrame]:
    """One frame through a fresh swresample to float mono at ``out_rate``, flushed."""
    resampler = mono_resampler(out_rate)
    return resampler.resample(frame) + resampler.resample(None)


def swr_resample(
    samples: np.ndarray, in_rate: int, out_rate: int, pts: int = 0, time_base: Fraction | None = None
) -> tuple[int, np.ndarray]:
    """swresample through PyAV, flushed: ``(first output pts, samples)`` (the reference)."""
    frames = swr_frames(mono_frame(samples, in_rate, pts, time_base), out_rate)
    if not frames:
        return 0, np.zeros(0, np.float32)
    return frames[0].pts or 0, np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


class Polyphase:
    """``in_rate -> out_rate`` as ``y[b*L + p] = sum_r x[b*M + r - pad] * H[r, p]``.

    ``L`` outputs per ``M`` inputs (the reduced ratio, grouped to at least
    ``_MIN_BLOCK`` outputs); column ``p`` of ``H`` is the filter of output phase
    ``p``, placed at its offset in the block. Inputs shorter than ``min_samples``
    are left to swresample (its edge rules change when the mirror is shorter
    than the filter).
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        g = math.gcd(in_rate, out_rate)
        self.in_rate, self.out_rate = in_rate, out_rate
        self.base_l, self.base_m = out_rate // g, in_rate // g
        group = max(1, -(-_MIN_BLOCK // self.base_l))
        self.L, self.M = self.base_l * group, self.base_m * group
        self.H, self.pad = self._measure()
        self.min_samples = 2 * self.H.shape[0]
        self._H = torch.from_numpy(self.H)
        self._counts: dict[int, int] = {}  # no lock: a race only measures a count twice

    def _measure(self) -> tuple[np.ndarray, int]:
        """Impulses far apart, one at every position modulo ``M``: each output near
        an impulse is one coefficient of ``H``."""
        L, M = self.L, self.M
        span = 64 * max(1, -(-self.base_m // self.base_l)) + 64  # > the filter's reach, in inputs
        spacing = M * -(-2 * span // M) + 1  # = 1 (mod M): impulse j sits at residue j
        positions = span + spacing * np.arange(M)
        x = np.zeros(2 * span + spacing * M, np.float32)
        x[positions] = 1.0
        first, y = swr_resample(x, self.in_rate, self.out_rate)
        if first != 0:
            raise RuntimeError(f"swresample started at pts {first}, expected 0")
        # Outputs within `span` inputs of each impulse, as a [M, K] grid.
        reach = span * self.base_l // self.base_m
        centre = positions * self.base_l // self.base_m
        n = centre[:, None] + np.arange(-reach, reach + 1)[None, :]
        values = y[np.clip(n, 0, y.size - 1)]
        if np.abs(values[:, [0, -1]]).max() > 0:
            raise RuntimeError("swresample's filter reaches further than the measurement window")
        rel = positions[:, None] - (n // L) * M  # input offset of the impulse in output n's block
        nonzero = values != 0
        lo, hi = int(rel[nonzero].min()), int(rel[nonzero].max())
        H = np.zeros((hi - lo + 1, L), np.float32)
        keep = (rel >= lo) & (rel <= hi)
        H[rel[keep] - lo, (n % L)[keep]] = values[keep]
        return H, -lo

    def count(self, n_in: int) -> int:
        """How many samples swresample returns for ``n_in`` inputs (flushed).

        Periodic: ``count(n + M) = count(n) + L`` for the reduced ratio; the
        offset for each residue is measured once, on zeros.
        """
        m, l_ = self.base_m, self.base_l
        residue = n_in % m
        base = self._counts.get(residue)
        if base is None:
            k = -(-self.min_samples // m) + 1
            _, out = swr_resample(np.zeros(k * m + residue, np.float32), self.in_rate, self.out_rate)
            base = self._counts[residue] = out.size - k * l_
        return base + (n_in // m) * l_

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Resampled float32 samples, ``count(len(samples))`` of them."""
        x = np.asarray(samples, dtype=np.float32)
        n_in = x.size
        if n_in < self.min_samples:
            raise ValueError(f"{n_in} samples is shorter than the filter allows ({self.min_samples})")
        n_out = self.count(n_in)
        rows, pad = self.H.shape[0], self.pad
        blocks = -(-n_out // self.L)
        padded = np.zeros(blocks * self.M + rows, np.float32)
        padded[:pad] = x[pad:0:-1]  # mirrored, without the first sample
        padded[pad : pad + n_in] = x
        tail = min(padded.size - pad - n_in, n_in)
        padded[pad + n_in : pad + n_in + tail] = x[::-1][:tail]  # mirrored, with the last sample
        windows = np.lib.stride_tricks.as_strided(padded, shape=(blocks, rows), strides=(self.M * 4, 4))
        out = np.empty((blocks, self.L), np.float32)
        # The overlapping windows are copied to a contiguous matrix for the GEMM (a
        # strided view makes it 15x slower): a bounded number of blocks at a time.
        for lo in range(0, blocks, _BLOCKS_PER_GEMM):
            chunk = np.ascontiguousarray(windows[lo : lo + _BLOCKS_PER_GEMM])
            torch.mm(torch.from_numpy(chunk), self._H, out=torch.from_numpy(out[lo : lo + _BLOCKS_PER_GEMM]))
        return out.reshape(-1)[:n_out]

    def first_output_index(self, pts: int, time_base: Fraction) -> int:
        """The output-rate sample index of the first output: the input start, rounded
        half up (as swresample's filter graph stamps it)."""
        exact = Fraction(pts) * time_base * self.out_rate
        return math.floor(exact + Fraction(1, 2))


@functools.lru_cache(maxsize=16)
def polyphase(in_rate: int, out_rate: int) -> Polyphase | None:
    """The resampler for a rate pair, built once per process; ``None`` where
    swresample itself should run (phase counts above ``_MAX_PHASES``)."""
    g = math.gcd(in_rate, out_rate)
    if out_rate // g > _MAX_PHASES or in_rate // g > 8 * _MAX_PHASES:
        return None
    return Polyphase(in_rate, out_rate)
