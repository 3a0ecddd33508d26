"""Whisper log-mel: parity with WhisperFeatureExtractor on real decoded windows, batching, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tali
from tali.errors import TaliConfigError, TaliProcessorError
from tali.processors import HFAudioProcessor, WhisperLogMel


@pytest.fixture(scope="module")
def extractors():
    from transformers import WhisperFeatureExtractor

    return {80: WhisperFeatureExtractor(), 128: WhisperFeatureExtractor(feature_size=128)}


@pytest.fixture(scope="module")
def audio_windows(sample_root):
    """Real 3 s windows decoded from the sample clips (tones, silence, late starts)."""
    config = tali.TaliConfig(
        modalities=("youtube_content_audio",), audio=tali.AudioConfig(on_missing="zeros")
    )
    ds = tali.TaliDataset(sample_root, split="train", config=config)
    return [ds[i]["youtube_content_audio"] for i in range(0, len(ds), 2)]


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("padding", ["30s", "window"])
def test_parity_with_feature_extractor(extractors, audio_windows, n_mels, padding):
    fast = WhisperLogMel.from_hf(extractors[n_mels], padding=padding)
    ref = HFAudioProcessor(extractors[n_mels], padding=padding)
    frames = 3000 if padding == "30s" else 300
    for window in audio_windows:
        a = fast.process(window, item_idx=0, field="youtube_content_audio")
        b = ref.process(window, item_idx=0, field="youtube_content_audio")
        assert a["input_features"].shape == b["input_features"].shape == (n_mels, frames)
        assert a["input_features"].dtype == torch.float32
        assert (a["input_features"] - b["input_features"]).abs().max().item() <= 1e-3
        assert torch.equal(a["attention_mask"], b["attention_mask"].to(torch.int32))


def test_default_filters_equal_the_extractor(extractors):
    built = WhisperLogMel(n_mels=128)
    taken = WhisperLogMel.from_hf(extractors[128])
    x = torch.from_numpy(np.random.default_rng(1).standard_normal(16_000).astype(np.float32))
    assert torch.equal(built(x), taken(x))


def test_batch_equals_rows(extractors, audio_windows):
    """A batch [B, T] gives each row's own features (per-row clamp at max - 8)."""
    fast = WhisperLogMel.from_hf(extractors[80])
    waves = torch.stack([w["waveform"] for w in audio_windows[:4]])
    batch = fast(waves)
    for i in range(4):
        assert torch.allclose(batch[i], fast(waves[i]), atol=1e-5)


def test_tone_lands_in_the_right_mel_band(audio_windows, sample_root):
    """Content check: the strongest mel bin follows the tone the clip plays."""
    fast = WhisperLogMel(padding="window")
    window = next(w for w in audio_windows if w["valid_samples"] > 0 and not w["missing"])
    features = fast(window["waveform"])
    peak_bin = int(features[:, 50].argmax())
    spectrum = torch.fft.rfft(window["waveform"][50 * 160 : 50 * 160 + 400] * torch.hann_window(400))
    hz = float(spectrum.abs().argmax()) * 16_000 / 400
    filters = torch.from_numpy(tali.processors.slaney_mel_filters(80))  # [201, 80]
    assert filters[round(hz / 40), peak_bin] > 0  # the bin's filter covers the tone


@settings(max_examples=12, deadline=None)
@given(length=st.integers(min_value=401, max_value=40_000), n_mels=st.sampled_from([80, 128]))
def test_zero_tail_shortcut_is_exact(length, n_mels):
    """Skipping all-zero STFT frames gives the same array as transforming them."""
    from transformers import WhisperFeatureExtractor

    rng = np.random.default_rng(length)
    wave = rng.standard_normal(length).astype(np.float32) * 0.3
    ref = WhisperFeatureExtractor(feature_size=n_mels)(wave, sampling_rate=16_000, return_tensors="pt")
    out = WhisperLogMel(n_mels=n_mels)(torch.from_numpy(wave))
    assert (out - ref["input_features"][0]).abs().max().item() <= 1e-3


def test_longer_than_30s_is_truncated(extractors):
    wave = torch.from_numpy(np.random.default_rng(2).standard_normal(31 * 16_000).astype(np.float32))
    out = WhisperLogMel.from_hf(extractors[80]).process(
        {"waveform": wave, "sample_rate": 16_000}, item_idx=1, field="a"
    )
    ref = HFAudioProcessor(extractors[80]).process(
        {"waveform": wave, "sample_rate": 16_000}, item_idx=1, field="a"
    )
    assert out["input_features"].shape == (80, 3000)
    assert (out["input_features"] - ref["input_features"]).abs().max().item() <= 1e-3
    assert int(out["attention_mask"].sum()) == 3000


def test_errors_name_item_and_field():
    proc = WhisperLogMel()
    with pytest.raises(
        TaliProcessorError,
        match=r"44100 Hz but the processor expects 16000.*item_idx=4, field=youtube_content_audio",
    ):
        proc.process(
            {"waveform": torch.zeros(44_100), "sample_rate": 44_100},
            item_idx=4,
            field="youtube_content_audio",
        )
    with pytest.raises(TaliProcessorError, match=r"mono float waveform.*\[2, 100\].*item_idx=5"):
        proc.process(
            {"waveform": torch.zeros(2, 100), "sample_rate": 16_000},
            item_idx=5,
            field="youtube_content_audio",
        )
    with pytest.raises(TaliConfigError, match=r"padding='pad' is not allowed"):
        WhisperLogMel(padding="pad")
    with pytest.raises(TaliConfigError, match="n_mels must be an int"):
        WhisperLogMel(n_mels=0)
    with pytest.raises(TaliConfigError, match=r"mel_filters must be \[201, 80\]"):
        WhisperLogMel(mel_filters=np.zeros((10, 80)))
