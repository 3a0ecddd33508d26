"""Processors inside real DataLoaders: workers, bad-sample policy, ProcessorSet checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tali
from tali.data.policy import ErrorReport
from tali.errors import TaliConfigError, TaliProcessorError
from tali.processors import ClipPixels, ProcessorSet, Tokenize, WhisperLogMel

CONFIG = tali.TaliConfig(
    modalities=("youtube_content_video", "youtube_content_audio", "youtube_title_text"),
    video=tali.VideoConfig(num_frames=4, selection="sequential"),
    audio=tali.AudioConfig(on_missing="zeros"),
)


def _expected_index(spec: dict, seconds: float) -> int | None:
    """The frame index the sample clip shows at ``seconds`` (frozen spans repeat one; black has none)."""
    index = round(seconds * spec["fps"])
    if spec["black_seconds"] and spec["black_seconds"][0] <= seconds < spec["black_seconds"][1]:
        return None
    if spec["frozen_seconds"] and spec["frozen_seconds"][0] <= seconds < spec["frozen_seconds"][1]:
        return round(spec["frozen_seconds"][0] * spec["fps"])
    return index


def _unnormalise(pixels: torch.Tensor) -> np.ndarray:
    std = torch.tensor(tali.processors.CLIP_STD).view(3, 1, 1)
    mean = torch.tensor(tali.processors.CLIP_MEAN).view(3, 1, 1)
    back = ((pixels * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(back.permute(1, 2, 0).numpy())


def test_two_workers_model_ready_batches(sample_root, clip_tokenizer):
    procs = ProcessorSet(
        {
            "youtube_content_video": ClipPixels(),
            "youtube_content_audio": WhisperLogMel(),
            "youtube_title_text": Tokenize(clip_tokenizer),
        }
    )
    ds = tali.TaliDataset(sample_root, split="train", config=CONFIG, processors=procs)
    loader = tali.make_loader(ds, batch_size=4, num_workers=2, collate_fn=procs.collate)
    truth = tali.sample_data.load_truth(sample_root)
    seen = checked = 0
    for batch in loader:
        video = batch["youtube_content_video"]
        assert video["pixel_values"].shape == (4, 4, 3, 224, 224)
        assert batch["youtube_content_audio"]["input_features"].shape == (4, 80, 3000)
        assert batch["youtube_title_text"]["input_ids"][:, 0].eq(49406).all()
        for i in range(4):
            spec = truth[int(batch["item_idx"][i])]
            for j in range(4):
                expected = _expected_index(spec, float(video["pts_seconds"][i, j]))
                if video["mask"][i, j] and expected is not None:
                    shown = tali.sample_data.read_frame_index(_unnormalise(video["pixel_values"][i, j]))
                    assert shown == expected
                    checked += 1
        seen += 4
    assert seen == len(ds) == 16
    assert checked >= 40


def _reject_odd(text: str) -> list[int]:
    """A tokenizer that fails on some rows (module-level so it pickles)."""
    if len(text) % 2:
        raise ValueError(f"odd length {len(text)}")
    return [len(text)]


@pytest.mark.parametrize("on_error", ["skip", "substitute"])
def test_processor_errors_follow_the_policy(sample_root, on_error):
    config = tali.TaliConfig(modalities=("youtube_title_text", "wikipedia_caption_image"))
    procs = ProcessorSet(
        {"youtube_title_text": Tokenize(_reject_odd, pad_id=0), "wikipedia_caption_image": ClipPixels()}
    )
    ds = tali.TaliDataset(sample_root, split="train", config=config, processors=procs, on_error=on_error)
    bad = [i for i in range(len(ds)) if len(ds.read_row(i)["youtube_title_text"] or "") % 2]
    assert 0 < len(bad) < len(ds)
    report = ErrorReport()
    for batch in tali.make_loader(ds, batch_size=4, num_workers=0, collate_fn=procs.collate):
        assert batch["wikipedia_caption_image"]["pixel_values"].shape == (4, 3, 224, 224)
        report.update(batch)
    assert report.yielded == len(ds)
    assert set(report.by_error) == {"TaliProcessorError"}
    assert {r.row for r in report.skipped} >= {
        ds.index.locate(i)[0].shard_row + ds.index.locate(i)[1] for i in bad
    }
    if on_error == "substitute":
        assert report.substituted == len(report.skipped) == len(bad)
    assert all(r.field == "youtube_title_text" and "odd length" in r.message for r in report.skipped)


def test_processor_error_raises_located(sample_root):
    config = tali.TaliConfig(
        modalities=("youtube_content_audio",), audio=tali.AudioConfig(sample_rate=22_050)
    )
    procs = ProcessorSet({"youtube_content_audio": WhisperLogMel()})
    ds = tali.TaliDataset(sample_root, split="val", config=config, processors=procs)
    with pytest.raises(
        TaliProcessorError,
        match=r"22050 Hz.*field=youtube_content_audio, shard=val-00000-of-00001.parquet, row=0",
    ):
        ds[0]


def test_processor_set_checks():
    with pytest.raises(TaliConfigError, match=r"'youtube_video' is not a sub-modality"):
        ProcessorSet({"youtube_video": ClipPixels()})
    with pytest.raises(
        TaliConfigError, match=r"must have consumes, produces, process\(\) and collate\(\); got function"
    ):
        ProcessorSet({"youtube_title_text": lambda v: v})
    with pytest.raises(ValueError, match="empty list"):
        ProcessorSet({}).collate([])
    procs = ProcessorSet({tali.SubModality.YOUTUBE_CONTENT_VIDEO: ClipPixels()})
    assert "youtube_content_video=ClipPixels" in repr(procs)


def test_processors_are_given_once(sample_root, clip_tokenizer):
    """The loader batches with the dataset's pipeline by default: per-batch padding of the
    processors without passing them again as collate_fn (tali.collate would refuse the
    ragged token lists)."""
    text = tali.TaliConfig(modalities=("youtube_title_text",))
    procs = ProcessorSet({"youtube_title_text": Tokenize(clip_tokenizer)})
    ds = tali.TaliDataset(sample_root, split="val", config=text, processors=procs)
    batch = next(iter(tali.make_loader(ds, batch_size=4, num_workers=0)))
    old = next(iter(tali.make_loader(ds, batch_size=4, num_workers=0, collate_fn=tali.collate)))
    assert "attention_mask" not in old["youtube_title_text"]  # what the default did before
    ids, mask = batch["youtube_title_text"]["input_ids"], batch["youtube_title_text"]["attention_mask"]
    assert ids.shape == mask.shape and ids.shape[0] == 4 and ids[:, 0].eq(49406).all()
    stream = tali.TaliStream(ds.files, config=text, processors=procs, shuffle=False)
    streamed = next(iter(stream.loader(batch_size=4, num_workers=0)))
    assert torch.equal(streamed["youtube_title_text"]["input_ids"], ids)
