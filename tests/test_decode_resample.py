"""The polyphase resampler returns what swresample returns: the same number of
samples, the same first timestamp, the same values to float rounding, at every
rate pair TALI clips and Whisper/CLAP-style targets use, for any input length."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from tali.decode.resample import Polyphase, polyphase, swr_resample

PAIRS = [
    (44_100, 16_000),
    (48_000, 16_000),
    (22_050, 16_000),
    (32_000, 16_000),
    (8_000, 16_000),
    (11_025, 16_000),
    (44_100, 22_050),
    (48_000, 44_100),
    (96_000, 16_000),
    (16_000, 16_000),
]


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_equals_swresample(in_rate, out_rate):
    rng = np.random.default_rng(in_rate + out_rate)
    resampler = polyphase(in_rate, out_rate)
    assert isinstance(resampler, Polyphase)
    # The shortest input it takes, every residue near it, and long random lengths.
    lengths = [resampler.min_samples + k for k in range(7)] + rng.integers(
        resampler.min_samples, 200_000, 6
    ).tolist()
    for n in lengths:
        t = np.arange(n) / in_rate
        # A chirp plus noise: content across the band, sharp at both edges.
        x = (0.5 * np.sin(2 * np.pi * (200 + 2000 * t) * t) + 0.1 * rng.standard_normal(n)).astype(np.float32)
        _, expected = swr_resample(x, in_rate, out_rate)
        got = resampler(x)
        assert got.shape == expected.shape, n
        np.testing.assert_allclose(got, expected, atol=2e-6, rtol=0)


def test_first_output_index_is_swresamples_pts():
    rng = np.random.default_rng(0)
    x = np.zeros(4_000, np.float32)
    for in_rate, out_rate in PAIRS[:4]:
        resampler = polyphase(in_rate, out_rate)
        for _ in range(20):
            pts = int(rng.integers(0, 10**7))
            time_base = Fraction(1, int(rng.choice([in_rate, 15_360, 1_000, 90_000])))
            first, _ = swr_resample(x, in_rate, out_rate, pts=pts, time_base=time_base)
            assert resampler.first_output_index(pts, time_base) == first


def test_short_inputs_are_refused_and_odd_ratios_left_to_swresample():
    resampler = polyphase(44_100, 16_000)
    with pytest.raises(ValueError, match="shorter than the filter"):
        resampler(np.zeros(resampler.min_samples - 1, np.float32))
    # 44100 -> 44099 needs 44099 exact phases: swresample interpolates instead.
    assert polyphase(44_100, 44_099) is None


def test_delay_free_a_tone_stays_in_phase():
    """A 440 Hz tone comes out as the same tone at the output rate, in phase:
    the filter is centred (no delay), so audio stays aligned with video."""
    in_rate, out_rate = 44_100, 16_000
    x = np.sin(2 * np.pi * 440 * np.arange(3 * in_rate) / in_rate).astype(np.float32)
    y = polyphase(in_rate, out_rate)(x)
    expected = np.sin(2 * np.pi * 440 * np.arange(y.size) / out_rate)
    middle = slice(200, -200)  # away from the mirrored edges
    np.testing.assert_allclose(y[middle], expected[middle], atol=2e-3)
