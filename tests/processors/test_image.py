"""CLIP pixels: parity with CLIPImageProcessor on the same sources, the fast normalise, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import tali
from tali.errors import TaliConfigError, TaliProcessorError
from tali.processors import ClipPixels, HFImageProcessor
from tali.processors.parity import image_pixel_parity, smooth_clip, video_pixel_parity

VIDEO_ONLY = tali.TaliConfig(modalities=("youtube_content_video", "wikipedia_caption_image"))


@pytest.fixture(scope="module")
def rows(sample_root):
    ds = tali.TaliDataset(sample_root, split="train", config=VIDEO_ONLY)
    return [ds.read_row(i) for i in range(len(ds))]


def test_video_geometry_parity_on_coded_frames(rows, clip_image_processor):
    # Rows 0, 5, 10, 15 cover 640x360 and 1280x720 clips at several frame rates.
    stats = video_pixel_parity(
        [r["youtube_video_content"] for r in rows[::5]], clip_image_processor, every=20, limit=4
    )
    assert stats["frames"] == 16
    assert stats["mean_255"] <= 2.0, stats
    assert stats["p99_255"] <= 8.0, stats


def test_video_geometry_parity_on_natural_content(clip_image_processor):
    stats = video_pixel_parity([smooth_clip(frames=12, seed=1)], clip_image_processor, every=4, limit=3)
    assert stats["frames"] == 3
    assert stats["mean_255"] <= 2.0, stats
    assert stats["p99_255"] <= 8.0, stats


def test_image_geometry_parity_every_image_mode(rows, clip_image_processor):
    # Wikipedia images of the sample set: RGB/CMYK JPEG, RGBA/LA/P PNG, L and I;16 grey.
    stats = image_pixel_parity([r["image"]["bytes"] for r in rows[:8]], clip_image_processor)
    assert stats["images"] == 8
    assert stats["mean_255"] <= 2.0, stats
    assert stats["p99_255"] <= 8.0, stats


def test_normalised_values_match_reference_processor(sample_root, clip_image_processor):
    """Same decoded uint8 pixels through both normalisations: identical to float rounding."""
    ds = tali.TaliDataset(
        sample_root, split="val", config=tali.TaliConfig(modalities=("youtube_content_video",))
    )
    frames = ds[0]["youtube_content_video"]["frames"]  # uint8 [8, 3, 224, 224]
    fast = ClipPixels.from_hf(clip_image_processor).process({"frames": frames}, item_idx=0, field="v")
    ref = HFImageProcessor(clip_image_processor).process({"frames": frames}, item_idx=0, field="v")
    assert fast["pixel_values"].dtype == torch.float32
    assert fast["pixel_values"].shape == ref["pixel_values"].shape == (8, 3, 224, 224)
    assert torch.allclose(fast["pixel_values"], ref["pixel_values"], atol=1e-5)
    # The frames still show their index after the round trip (content, not just shapes).
    std = torch.tensor(clip_image_processor.image_std).view(3, 1, 1)
    mean = torch.tensor(clip_image_processor.image_mean).view(3, 1, 1)
    back = ((fast["pixel_values"][0] * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(back, frames[0])


def test_device_mode_keeps_uint8_and_normalises_after_transfer(sample_root):
    from tali.processors import ProcessorSet

    config = tali.TaliConfig(modalities=("youtube_content_video", "wikipedia_caption_image"))
    host = ProcessorSet({"youtube_content_video": ClipPixels(), "wikipedia_caption_image": ClipPixels()})
    dev = ProcessorSet(
        {
            "youtube_content_video": ClipPixels(normalize="device"),
            "wikipedia_caption_image": ClipPixels(normalize="device"),
        }
    )
    ds_host = tali.TaliDataset(sample_root, split="val", config=config, processors=host)
    ds_dev = tali.TaliDataset(sample_root, split="val", config=config, processors=dev)
    b_host = host.collate([ds_host[i] for i in range(2)])
    b_dev = dev.collate([ds_dev[i] for i in range(2)])
    assert b_dev["youtube_content_video"]["pixel_values"].dtype == torch.uint8
    moved = dev.to_device(b_dev, "cpu")
    for key in ("youtube_content_video", "wikipedia_caption_image"):
        assert moved[key]["pixel_values"].dtype == torch.float32
        assert torch.allclose(moved[key]["pixel_values"], b_host[key]["pixel_values"], atol=1e-6)
    assert torch.equal(moved["youtube_content_video"]["mask"], b_host["youtube_content_video"]["mask"])


def test_float_frames_are_accepted():
    pixels = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    proc = ClipPixels()
    a = proc.process({"frames": pixels}, item_idx=1, field="v")["pixel_values"]
    b = proc.process({"frames": pixels.float() / 255}, item_idx=1, field="v")["pixel_values"]
    assert torch.allclose(a, b, atol=1e-5)


def test_pickles_into_workers():
    proc = ClipPixels(normalize="device")
    again = pickle.loads(pickle.dumps(proc))
    assert again == proc
    x = torch.full((3, 224, 224), 128, dtype=torch.uint8)
    assert torch.equal(again.normalise(x), proc.normalise(x))


def test_wrong_size_names_item_and_field():
    with pytest.raises(
        TaliProcessorError,
        match=r"expects uint8 \[\.\.\., 3, 224, 224\].*\[item_idx=7, field=youtube_content_video\]",
    ):
        ClipPixels().process(
            {"frames": torch.zeros(8, 3, 256, 256, dtype=torch.uint8)},
            item_idx=7,
            field="youtube_content_video",
        )


def test_pil_output_is_rejected():
    from PIL import Image

    with pytest.raises(TaliProcessorError, match=r"not 'pil'.*item_idx=3"):
        ClipPixels().process(
            {"pixels": Image.new("RGB", (224, 224))}, item_idx=3, field="wikipedia_caption_image"
        )
    with pytest.raises(TaliProcessorError, match=r"HFImageProcessor expects uint8.*item_idx=3"):
        HFImageProcessor(lambda **kw: kw).process({"pixels": torch.zeros(1, 2, 2)}, item_idx=3, field="x")


def test_config_errors(clip_image_processor):
    from transformers import CLIPImageProcessor

    with pytest.raises(TaliConfigError, match=r"normalize='gpu' is not allowed.*'host', 'device'"):
        ClipPixels(normalize="gpu")
    with pytest.raises(TaliConfigError, match="size must be an int"):
        ClipPixels(size=0)
    with pytest.raises(TaliConfigError, match="3 positive stds"):
        ClipPixels(std=(0.0, 1.0, 1.0))
    with pytest.raises(TaliConfigError, match="short side to S, centre crop"):
        ClipPixels.from_hf(CLIPImageProcessor(size={"shortest_edge": 256}))
    with pytest.raises(TaliConfigError, match="resamples with 2"):
        ClipPixels.from_hf(CLIPImageProcessor(resample=2))
    with pytest.raises(TaliConfigError, match="callable image processor"):
        HFImageProcessor(42)
    assert ClipPixels.from_hf(clip_image_processor).decode_size == 224


def test_reference_path_on_full_resolution(sample_root, clip_image_processor):
    config = tali.TaliConfig(
        modalities=("youtube_random_video_frame",),
        video=tali.VideoConfig(size=None),
        image=tali.ImageConfig(size=None),
    )
    ds = tali.TaliDataset(sample_root, split="val", config=config)
    sample = ds[1]
    pixels = sample["youtube_random_video_frame"]["pixels"]
    assert pixels.shape[-2:] != (224, 224)  # full resolution from the decoder
    out = HFImageProcessor(clip_image_processor).process(
        sample["youtube_random_video_frame"], item_idx=1, field="f"
    )
    assert out["pixel_values"].shape == (3, 224, 224)
    std = torch.tensor(clip_image_processor.image_std).view(3, 1, 1)
    mean = torch.tensor(clip_image_processor.image_mean).view(3, 1, 1)
    back = ((out["pixel_values"] * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    index = tali.sample_data.read_frame_index(np.ascontiguousarray(back.permute(1, 2, 0).numpy()))
    fps = tali.sample_data.load_truth(sample_root)[sample["item_idx"]]["fps"]
    assert index == round(sample["youtube_random_video_frame"]["pts_seconds"] * fps)
