"""Nonsense values are refused at construction with a message that says what to do
instead; values that are merely short of the data are padded and recorded."""

from __future__ import annotations

import pytest

import tali
from tali import AudioConfig, TaliConfig, TextConfig, VideoConfig, WindowConfig
from tali.errors import TaliConfigError
from tali.hub import HubFile, parse_split, select_shards


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: WindowConfig(seconds=100), r"seconds=100 is longer than the clips.*seconds=None"),
        (lambda: WindowConfig(start=45.0), r"start=45.0 is past the end of the clips"),
        (lambda: TextConfig(language="english"), r"language='english' is not a Wikipedia.*did you mean 'en'"),
        (lambda: TextConfig(language="EN"), r"language='EN' is not a Wikipedia language code"),
        (lambda: TextConfig(language=""), r"language='' is not"),
        (lambda: TaliConfig(video=VideoConfig(num_frames=10_000)), r"num_frames=10000 is more than a 3 s"),
        (
            lambda: TaliConfig(window=WindowConfig(seconds=None), video=VideoConfig(num_frames=10_000)),
            r"num_frames=10000 is more than a 30 s window can hold \(3600 frames",
        ),
    ],
)
def test_nonsense_is_refused(make, match):
    with pytest.raises(TaliConfigError, match=match):
        make()


@pytest.mark.parametrize("code", ["en", "de", "zh-TW", "sr-Latn", "be-tarask", "simple", None])
def test_wit_language_codes_are_accepted(code):
    assert TextConfig(language=code).language == code


def test_frames_are_only_bounded_when_video_is_wanted():
    config = TaliConfig(modalities=["wikipedia_caption_text"], video=VideoConfig(num_frames=10_000))
    assert config.video.num_frames == 10_000  # nothing is decoded, nothing to refuse
    assert TaliConfig(video=VideoConfig(num_frames=360)).video.num_frames == 360  # 3 s at 120 fps


@pytest.mark.parametrize(
    "split, match",
    [
        ("train[:150%]", r"150% is outside -100%\.\.100%"),
        ("train[-101%:]", r"-101% is outside"),
        ("train[1.5:3]", r"'1.5' is not a shard index"),
        ("train[", r"not understood"),
    ],
)
def test_bad_split_slices_are_refused_before_any_io(split, match):
    with pytest.raises(TaliConfigError, match=match):
        parse_split(split)
    with pytest.raises(TaliConfigError, match=match):
        tali.load("/nonexistent/never-read", split=split)  # refused before the source is looked at


def test_split_slices_clamp_indices_and_refuse_empty_selections():
    files = [HubFile(f"data/train-{i:05d}-of-00004.parquet", 1, None) for i in range(4)]
    assert len(select_shards(files, parse_split("train[:100%]"))) == 4
    assert len(select_shards(files, parse_split("train[2:400]"))) == 2  # indices clamp like slices
    with pytest.raises(TaliConfigError, match=r"train\[3:1\] selects none of the split's 4 shards"):
        select_shards(files, parse_split("train[3:1]"))


def test_a_clip_shorter_than_the_window_is_padded_and_recorded(sample_root, truth):
    """The 12 s clip under a 20 s window: one batch shape, the real part recorded."""
    item = next(i for i, t in truth.items() if t["split"] == "train" and t["duration_seconds"] < 15)
    config = TaliConfig(
        modalities=["video", "audio"],
        window=WindowConfig(seconds=20.0, start="start"),
        audio=AudioConfig(sample_rate=16_000),
    )
    dataset = tali.TaliDataset(sample_root, split="train", config=config)
    row = next(i for i in range(len(dataset)) if dataset[i]["item_idx"] == item)
    sample = dataset[row]
    clip = sample["window"]["clip_seconds"]
    assert sample["window"]["duration_seconds"] == 20.0 and 11.5 < clip < 12.5
    audio = sample["youtube_content_audio"]
    assert audio["waveform"].shape == (320_000,)
    assert abs(audio["valid_samples"] - clip * 16_000) < 16_000 * 0.1
    assert sample["youtube_content_video"]["mask"].all()  # 8 frames fit in 12 s


def test_missing_audio_defaults_to_zeros_and_error_says_how_to_switch(sample_root, truth):
    item = next(i for i, t in truth.items() if t["split"] == "train" and not t["has_audio"])
    dataset = tali.TaliDataset(sample_root, split="train", config=TaliConfig(modalities=["audio"]))
    row = next(i for i in range(len(dataset)) if dataset[i]["item_idx"] == item)
    audio = dataset[row]["youtube_content_audio"]
    assert audio["missing"] is True and audio["valid_samples"] == 0 and not audio["waveform"].any()
    strict = tali.TaliDataset(
        sample_root,
        split="train",
        config=TaliConfig(modalities=["audio"], audio=AudioConfig(on_missing="error")),
    )
    with pytest.raises(tali.TaliMissingStreamError, match=r"on_missing='zeros'.*on_error='skip'"):
        strict[row]


def test_metrics_language_is_a_code_too():
    from tali.quality import MetricsOptions

    with pytest.raises(TaliConfigError, match=r"MetricsOptions.language='English'.*did you mean 'en'"):
        MetricsOptions(language="English")
