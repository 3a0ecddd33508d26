"""Waveform gain and noise at an SNR; SpecAugment masks on the log-mel.

Gain and noise act on the decoded window (``waveform`` float32 ``[T]``), only
on its ``valid_samples`` (padding stays silent); SpecAugment acts on the
processed ``input_features`` ``[n_mels, frames]`` (``WhisperLogMel``), with time
masks drawn inside the frames that hold signal, not the padding to 30 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tali.augment._checks import check_range
from tali.errors import TaliConfigError, TaliProcessorError

__all__ = ["AudioAugment", "SpecAugment", "apply_audio", "apply_spec_augment"]


def _check_pair(owner: str, name: str, value: Any, lo: float, hi: float) -> None:
    if value is not None:  # None: this augmentation is off
        check_range(owner, name, value, lo, hi)


@dataclass(frozen=True, kw_only=True)
class AudioAugment:
    """``gain_db``: uniform gain range in dB; ``noise_snr_db``: white Gaussian noise
    at an SNR drawn from this range (signal power over the valid samples),
    added with probability ``noise_p``. ``None`` turns a part off; every part is off
    unless named (``AudioAugment(gain_db=(-6, 6))`` only changes the gain);
    :meth:`default` is the recommended set."""

    gain_db: tuple[float, float] | None = None
    noise_snr_db: tuple[float, float] | None = None
    noise_p: float = 1.0

    @classmethod
    def default(cls) -> AudioAugment:
        """Gain -6..+6 dB; noise at 10-40 dB SNR on half the windows."""
        return cls(gain_db=(-6.0, 6.0), noise_snr_db=(10.0, 40.0), noise_p=0.5)

    def __post_init__(self) -> None:
        _check_pair("AudioAugment", "gain_db", self.gain_db, -60.0, 60.0)
        _check_pair("AudioAugment", "noise_snr_db", self.noise_snr_db, -20.0, 100.0)
        if not isinstance(self.noise_p, int | float) or not 0 <= self.noise_p <= 1:
            raise TaliConfigError(
                f"AudioAugment.noise_p must be a probability in [0, 1], got {self.noise_p!r}"
            )


def apply_audio(value: dict[str, Any], cfg: AudioAugment, rng: np.random.Generator) -> dict[str, float]:
    """Modify ``value["waveform"]`` in place; returns what was drawn
    (``gain_db``, ``snr_db``: NaN when no noise was added)."""
    gain_u, noise_u, snr_u = rng.random(3)
    seed = int(rng.integers(2**63))
    wave = value["waveform"]
    valid = int(value.get("valid_samples", wave.numel()))
    gain_db = (
        0.0 if cfg.gain_db is None else float(cfg.gain_db[0] + gain_u * (cfg.gain_db[1] - cfg.gain_db[0]))
    )
    snr_db = float("nan")
    x = wave[:valid]
    if gain_db != 0.0:
        x.mul_(10.0 ** (gain_db / 20.0))
    if cfg.noise_snr_db is not None and noise_u < cfg.noise_p and valid > 0:
        power = float(x.square().mean())
        if power > 0:  # SNR of silence is undefined: leave it silent
            snr_db = float(cfg.noise_snr_db[0] + snr_u * (cfg.noise_snr_db[1] - cfg.noise_snr_db[0]))
            sigma = (power / 10.0 ** (snr_db / 10.0)) ** 0.5
            noise = torch.randn(valid, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)
            x.add_(noise.mul_(sigma))
    return {"gain_db": gain_db, "snr_db": snr_db}


@dataclass(frozen=True, kw_only=True)
class SpecAugment:
    """Park et al. 2019 masks: ``time_masks`` bands of up to ``time_width`` frames
    (10 ms each for Whisper) and ``freq_masks`` bands of up to ``freq_width`` mel
    bins, set to the features' mean. ``key`` names the processed tensor."""

    time_masks: int = 2
    time_width: int = 40
    freq_masks: int = 2
    freq_width: int = 15
    key: str = "input_features"
    #: Samples per feature frame (Whisper: hop 160 at 16 kHz).
    hop_samples: int = 160

    def __post_init__(self) -> None:
        for name in ("time_masks", "time_width", "freq_masks", "freq_width", "hop_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TaliConfigError(f"SpecAugment.{name} must be an int >= 0, got {value!r}")


def apply_spec_augment(
    value: dict[str, Any],
    cfg: SpecAugment,
    rng: np.random.Generator,
    *,
    valid_samples: int | None,
    field: str,
) -> dict[str, list[list[int]]]:
    """Mask ``value[cfg.key]`` (``[n_mels, frames]``) in place; returns the bands as
    ``{"time": [[start, width], ...], "freq": [...]}`` (fixed count, width 0 = none)."""
    features = value.get(cfg.key)
    if not isinstance(features, torch.Tensor) or features.ndim != 2:
        raise TaliProcessorError(
            f"SpecAugment needs {cfg.key!r} [n_mels, frames] from an audio processor "
            f"(e.g. WhisperLogMel) before it; got {type(features).__name__}",
            field=field,
        )
    n_mels, frames = features.shape
    signal = frames if valid_samples is None else max(1, min(frames, -(-valid_samples // cfg.hop_samples)))
    fill = features[:, :signal].mean()
    draws = rng.random((cfg.time_masks + cfg.freq_masks, 2))
    bands: dict[str, list[list[int]]] = {"time": [], "freq": []}
    for i, (kind, count, width, extent) in enumerate(
        (("time", cfg.time_masks, cfg.time_width, signal), ("freq", cfg.freq_masks, cfg.freq_width, n_mels))
    ):
        base = 0 if i == 0 else cfg.time_masks
        for j in range(count):
            w = min(int(draws[base + j, 0] * (width + 1)), extent)
            start = int(draws[base + j, 1] * (extent - w + 1))
            bands[kind].append([start, w])
            if w:
                if kind == "time":
                    features[:, start : start + w] = fill
                else:
                    features[start : start + w, :] = fill
    return bands
