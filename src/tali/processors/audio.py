"""Audio windows to Whisper log-mel ``input_features``, batched in torch.

:class:`WhisperLogMel` computes exactly what ``WhisperFeatureExtractor`` does
(Hann STFT, n_fft 400, hop 160, power spectrum without the last frame, Slaney
mel filters, ``log10(max(mel, 1e-10))``, clamp to ``max - 8``, ``(x + 4) / 4``)
for a whole batch ``[B, T]`` in a few torch ops, with two savings:

- Filters, window and constants are built once, not on every call.
- Padding to 30 s: a 3 s window padded to 30 s is 90 % zeros, and every STFT
  frame that sees only zeros has mel energy 0, i.e. log-mel ``log10(1e-10)``
  before the clamp. Those frames are filled with that constant instead of
  being transformed; only the frames that touch the signal (plus the reflect
  padding at the start) go through the STFT. The result is the same array.

:class:`HFAudioProcessor` wraps the ``transformers`` extractor itself as the
reference path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from tali.config import _check_choice
from tali.errors import TaliConfigError, TaliProcessorError

__all__ = ["AudioPadding", "HFAudioProcessor", "WhisperLogMel", "slaney_mel_filters"]

AudioPadding = Literal["30s", "window"]


def slaney_mel_filters(n_mels: int, *, n_fft: int = 400, sample_rate: int = 16_000) -> np.ndarray:
    """Whisper's filter bank ``[n_fft // 2 + 1, n_mels]`` (Slaney scale and norm, 0-8 kHz),
    from ``transformers.audio_utils`` so it is the same array the reference uses."""
    from tali._optional import require

    mel_filter_bank = require(
        "transformers.audio_utils", extra="models", feature="WhisperLogMel's mel filters"
    ).mel_filter_bank
    return mel_filter_bank(
        num_frequency_bins=1 + n_fft // 2,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=8000.0,
        sampling_rate=sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )


def _audio_of(value: dict[str, Any], *, item_idx: int | None, field: str, sample_rate: int) -> torch.Tensor:
    wave = value.get("waveform")
    if not isinstance(wave, torch.Tensor) or wave.ndim != 1 or not wave.is_floating_point():
        raise TaliProcessorError(
            f"expected a mono float waveform [T], got {type(wave).__name__} "
            f"{list(wave.shape) if isinstance(wave, torch.Tensor) else ''}".rstrip(),
            item_idx=item_idx,
            field=field,
        )
    rate = value.get("sample_rate", sample_rate)
    if int(rate) != sample_rate:
        raise TaliProcessorError(
            f"audio is at {rate} Hz but the processor expects {sample_rate} Hz; "
            f"set AudioConfig(sample_rate={sample_rate})",
            item_idx=item_idx,
            field=field,
        )
    return wave


class WhisperLogMel:
    """Mono waveforms at 16 kHz to Whisper ``input_features [n_mels, frames]`` (float32).

    ``padding="30s"``: pad or truncate to ``chunk_seconds`` (3000 frames), as
    Whisper's encoder expects. ``padding="window"``: no padding, ``T // hop``
    frames (cheaper, for encoders that accept any length). Also returns
    ``attention_mask`` ``[frames]`` int32: 1 where the frame starts inside the window.
    """

    consumes: ClassVar[tuple[str, ...]] = ("waveform",)
    produces: ClassVar[tuple[str, ...]] = ("input_features", "attention_mask")

    def __init__(
        self,
        *,
        n_mels: int = 80,
        padding: AudioPadding = "30s",
        sample_rate: int = 16_000,
        n_fft: int = 400,
        hop_length: int = 160,
        chunk_seconds: int = 30,
        mel_filters: np.ndarray | None = None,
    ) -> None:
        _check_choice("WhisperLogMel", "padding", padding, AudioPadding)
        if not isinstance(n_mels, int) or n_mels < 1:
            raise TaliConfigError(
                f"WhisperLogMel.n_mels must be an int >= 1 (80 or 128 for Whisper), got {n_mels!r}"
            )
        self.n_mels, self.padding, self.sample_rate = n_mels, padding, sample_rate
        self.n_fft, self.hop_length, self.chunk_seconds = n_fft, hop_length, chunk_seconds
        self.n_samples = chunk_seconds * sample_rate
        filters = (
            mel_filters
            if mel_filters is not None
            else slaney_mel_filters(n_mels, n_fft=n_fft, sample_rate=sample_rate)
        )
        if filters.shape != (n_fft // 2 + 1, n_mels):
            raise TaliConfigError(
                f"mel_filters must be [{n_fft // 2 + 1}, {n_mels}], got {list(filters.shape)}"
            )
        self._filters_t = torch.from_numpy(np.ascontiguousarray(filters, dtype=np.float32))  # [F, M]
        self._window = torch.hann_window(n_fft)
        self._floor = float(torch.tensor(1e-10, dtype=torch.float32).log10())

    @classmethod
    def from_hf(cls, extractor: Any, *, padding: AudioPadding = "30s") -> WhisperLogMel:
        """Same parameters and filters as a ``WhisperFeatureExtractor`` (80 or 128 bins)."""
        return cls(
            n_mels=int(extractor.feature_size),
            padding=padding,
            sample_rate=int(extractor.sampling_rate),
            n_fft=int(extractor.n_fft),
            hop_length=int(extractor.hop_length),
            chunk_seconds=int(extractor.chunk_length),
            mel_filters=np.asarray(extractor.mel_filters),
        )

    def __repr__(self) -> str:
        return f"WhisperLogMel(n_mels={self.n_mels}, padding={self.padding!r})"

    def num_frames(self, num_samples: int) -> int:
        return (self.n_samples if self.padding == "30s" else num_samples) // self.hop_length

    def __call__(self, waveforms: torch.Tensor, lengths: Sequence[int] | None = None) -> torch.Tensor:
        """Log-mel of ``[B, T]`` (or ``[T]``) float waveforms: ``[B, n_mels, frames]`` float32.

        ``lengths`` (samples per row, default ``T``) marks zero tails already
        present in ``waveforms`` so they are skipped the same way as padding.
        """
        single = waveforms.ndim == 1
        x = (waveforms[None] if single else waveforms).to(torch.float32)
        total = self.n_samples if self.padding == "30s" else x.shape[-1]
        x = x[:, :total]
        signal = x.shape[-1] if lengths is None else min(x.shape[-1], max(int(n) for n in lengths))
        out_frames = total // self.hop_length
        half, hop = self.n_fft // 2, self.hop_length
        if signal <= half:  # too short to reflect-pad: pad to the full length first, as the reference does
            x = torch.nn.functional.pad(x, (0, total - x.shape[-1]))
            signal = total
        # STFT frame t covers padded[t*hop, t*hop + n_fft) where padded = reflect(half) + signal
        # + zeros (+ reflect of zeros). Frames starting past signal + half see only zeros: their
        # mel energy is 0, so they are not transformed (a 3 s window in 30 s: 90 % of frames).
        needed = out_frames if total - signal <= half else min(out_frames, -(-(signal + half) // hop) + 1)
        span = (needed - 1) * hop + self.n_fft
        left = x[:, 1 : half + 1].flip(-1)
        body = x[:, :signal]
        if (
            total - signal <= half
        ):  # no zero tail: the end is a true reflection, as in torch.stft(center=True)
            body = torch.nn.functional.pad(x, (0, total - x.shape[-1]))
            right = body[:, -half - 1 : -1].flip(-1)
        else:
            right = x.new_zeros(x.shape[0], max(span - half - signal, 0))
        padded = torch.cat([left, body, right], dim=-1)[:, :span]
        frames = padded.unfold(-1, self.n_fft, hop)  # [B, needed, n_fft], a view
        # The constants follow the input's device (a no-op on the CPU; 64 KB on a GPU).
        spec = torch.fft.rfft(frames * self._window.to(x.device), dim=-1)  # [B, needed, F]
        power = spec.real.square_().add_(spec.imag.square())
        # One plain GEMM [B * needed, F] @ [F, M]: no batch broadcast of the filters, no transposed copy.
        mel = torch.matmul(power, self._filters_t.to(x.device))  # [B, needed, M]
        head = mel.clamp_(min=1e-10).log10_()
        # Zero frames sit at the floor, which is <= every computed value: the peak is the head's.
        floor_at = head.amax(dim=(1, 2), keepdim=True) - 8.0
        head = torch.maximum(head, floor_at).add_(4.0).div_(4.0)
        out = head.new_empty((x.shape[0], self.n_mels, out_frames))
        out[..., :needed] = head.transpose(1, 2)
        if needed < out_frames:
            out[..., needed:] = floor_at.clamp(min=self._floor).add_(4.0).div_(4.0)
        head = out
        return head[0] if single else head

    def process(self, value: dict[str, Any], *, item_idx: int | None, field: str) -> dict[str, Any]:
        wave = _audio_of(value, item_idx=item_idx, field=field, sample_rate=self.sample_rate)
        features = self(wave)
        frames = features.shape[-1]
        valid = min(frames, -(-min(wave.shape[0], self.n_samples) // self.hop_length))
        mask = torch.zeros(frames, dtype=torch.int32)
        mask[:valid] = 1
        return {"input_features": features, "attention_mask": mask}

    def collate(self, values: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {key: torch.stack([v[key] for v in values]) for key in self.produces}


class HFAudioProcessor:
    """Reference path: a ``transformers`` feature extractor (``WhisperFeatureExtractor``) per sample."""

    consumes: ClassVar[tuple[str, ...]] = ("waveform",)
    produces: ClassVar[tuple[str, ...]] = ("input_features", "attention_mask")

    def __init__(self, extractor: Any, *, padding: AudioPadding = "30s") -> None:
        _check_choice("HFAudioProcessor", "padding", padding, AudioPadding)
        self.extractor, self.padding = extractor, padding

    def __repr__(self) -> str:
        return f"HFAudioProcessor({type(self.extractor).__name__}, padding={self.padding!r})"

    def process(self, value: dict[str, Any], *, item_idx: int | None, field: str) -> dict[str, Any]:
        rate = int(self.extractor.sampling_rate)
        wave = _audio_of(value, item_idx=item_idx, field=field, sample_rate=rate)
        kwargs = (
            {"padding": "max_length"}
            if self.padding == "30s"
            else {"padding": "longest", "truncation": False}
        )
        out = self.extractor(
            wave.numpy(), sampling_rate=rate, return_tensors="pt", return_attention_mask=True, **kwargs
        )
        return {"input_features": out["input_features"][0], "attention_mask": out["attention_mask"][0]}

    def collate(self, values: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {key: torch.stack([v[key] for v in values]) for key in self.produces}
