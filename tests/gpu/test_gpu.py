"""Device-side batches on the GPU: normalisation after the copy, log-mel, pinned memory.

Every test runs per device: ``device=cpu`` here (the same code path, so it cannot rot),
``device=cuda`` where a GPU is (``pytest -m gpu tests/gpu``; ``benchmarks/node/run_node.py``
runs it on the GPU machine). Without CUDA the cuda variants skip with that reason.

Tolerances, stated once: CLIP pixels <= 1e-6 (float32 rounding of one multiply-add on
values <= 2.2: a few ulp, fused or not); Whisper log-mel <= 1e-3 (the bound the fast path
keeps against ``WhisperFeatureExtractor``, tests/processors/test_audio.py); pinned and
``non_blocking`` copies: bit-identical.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

import tali
from tali.processors import CLIP_MEAN, CLIP_STD, ClipPixels, ProcessorSet, WhisperLogMel

pytestmark = pytest.mark.gpu

NO_CUDA = "no CUDA device: run benchmarks/node/run_node.py on a GPU machine"
DEVICES = [
    pytest.param("cpu", id="device=cpu"),
    pytest.param(
        "cuda",
        id="device=cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA),
    ),
]
PIXEL_ATOL = 1e-6
LOG_MEL_ATOL = 1e-3

CONFIG = tali.TaliConfig(
    modalities=("wikipedia_caption_image", "youtube_content_video", "youtube_content_audio"),
    window=tali.WindowConfig(seconds=1.0),
    video=tali.VideoConfig(num_frames=2, size=64),
    image=tali.ImageConfig(size=64),
    audio=tali.AudioConfig(on_missing="zeros"),
)


def _procs(normalize: str) -> ProcessorSet:
    pixels = ClipPixels(size=64, normalize=normalize)  # type: ignore[arg-type]
    return ProcessorSet(
        {
            "wikipedia_caption_image": pixels,
            "youtube_content_video": pixels,
            "youtube_content_audio": WhisperLogMel(padding="window"),
        }
    )


def _first_batch(sample_root, procs: ProcessorSet, **loader_kwargs: Any) -> dict[str, Any]:
    ds = tali.TaliDataset(sample_root, split="train", config=CONFIG, processors=procs)
    loader = tali.make_loader(ds, batch_size=4, collate_fn=procs.collate, **loader_kwargs)
    return next(iter(loader))


def _tensors(value: Any, path: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{path}/{key}")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("device", DEVICES)
def test_device_normalisation_equals_host(sample_root, device):
    """uint8 pixels through the loader, normalised after ``to_device``: the host result."""
    host = _first_batch(sample_root, _procs("host"), num_workers=0)
    deferred_procs = _procs("device")
    deferred = _first_batch(sample_root, deferred_procs, num_workers=0)
    for name in ("wikipedia_caption_image", "youtube_content_video"):
        assert deferred[name]["pixel_values"].dtype == torch.uint8  # 4x fewer bytes cross the bus
    moved = deferred_procs.to_device(deferred, device)
    _sync(device)
    for name in ("wikipedia_caption_image", "youtube_content_video"):
        got, want = moved[name]["pixel_values"], host[name]["pixel_values"]
        assert got.device.type == device and got.dtype == torch.float32
        assert got.shape == want.shape == ((4, 3, 64, 64) if "image" in name else (4, 2, 3, 64, 64))
        torch.testing.assert_close(got.cpu(), want, rtol=0, atol=PIXEL_ATOL)


@pytest.mark.parametrize("device", DEVICES)
def test_uint8_normalised_on_device_equals_cpu(device):
    """Every uint8 value in every channel: the device's result is the CPU's and the formula's."""
    pixels = ClipPixels(size=16, normalize="device")
    values = torch.arange(256, dtype=torch.uint8).view(1, 16, 16).expand(3, 16, 16).contiguous()
    on_device = pixels.normalise(values.to(device))
    _sync(device)
    assert on_device.device.type == device and on_device.dtype == torch.float32
    on_cpu = pixels.normalise(values)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float64).view(3, 1, 1)
    formula = (values.double() / 255 - mean) / std
    torch.testing.assert_close(on_device.cpu(), on_cpu, rtol=0, atol=PIXEL_ATOL)
    torch.testing.assert_close(on_device.cpu().double(), formula, rtol=0, atol=PIXEL_ATOL)


@pytest.mark.parametrize("device", DEVICES)
def test_whisper_log_mel_on_device_equals_cpu(sample_root, device):
    """A batch of real 1 s windows (tones, silence): log-mel on the device vs on the CPU."""
    raw = _first_batch(sample_root, ProcessorSet({}), num_workers=0)
    waves = raw["youtube_content_audio"]["waveform"]  # [4, 16000] float32
    assert waves.shape == (4, 16_000) and waves.abs().max() > 0
    for padding, frames in (("window", 100), ("30s", 3000)):
        mel = WhisperLogMel(padding=padding)  # type: ignore[arg-type]
        got = mel(waves.to(device))
        _sync(device)
        assert got.device.type == device and got.shape == (4, 80, frames)
        torch.testing.assert_close(got.cpu(), mel(waves), rtol=0, atol=LOG_MEL_ATOL)


def test_whisper_log_mel_follows_the_input_device():
    """The window and filters move to the input's device (they stayed on the CPU and raised
    ``Tensor on device cpu is not on the expected device``): checked on ``meta`` here."""
    waves = torch.empty(2, 16_000, device="meta")
    out = WhisperLogMel(padding="window")(waves)
    assert out.device.type == "meta" and out.shape == (2, 80, 100)


@pytest.mark.parametrize("device", DEVICES)
def test_pinned_non_blocking_copies_are_identical(sample_root, device):
    """``pin_memory=True`` + ``non_blocking`` copies give the same tensors as plain copies."""
    procs = _procs("device")
    pinned = _first_batch(sample_root, procs, num_workers=1, pin_memory=device == "cuda")
    plain = _first_batch(sample_root, procs, num_workers=0)
    leaves = dict(_tensors(pinned))
    assert {"/youtube_content_video/pixel_values", "/youtube_content_audio/input_features"} <= set(leaves)
    if device == "cuda":
        unpinned = [path for path, t in leaves.items() if not t.is_pinned()]
        assert not unpinned, f"not pinned: {unpinned}"
    fast = procs.to_device(pinned, device, non_blocking=True)
    slow = procs.to_device(plain, device, non_blocking=False)
    _sync(device)
    fast_leaves, slow_leaves = dict(_tensors(fast)), dict(_tensors(slow))
    assert fast_leaves.keys() == slow_leaves.keys() == leaves.keys()
    for path, got in fast_leaves.items():
        want = slow_leaves[path]
        assert got.device.type == device and got.dtype == want.dtype, path
        assert torch.equal(got, want), path
    assert fast_leaves["/youtube_content_video/pixel_values"].dtype == torch.float32
