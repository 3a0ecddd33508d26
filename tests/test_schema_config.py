"""The schema module is the one place for column names; configs reject bad values clearly."""

from __future__ import annotations

import pickle

import pyarrow.parquet as pq
import pytest

from tali import TALI_SCHEMA, SubModality, TaliConfig, TaliConfigError, VideoConfig, WindowConfig
from tali.config import AudioConfig, TextConfig
from tali.schema import Modality, columns_for, parse_submodalities


def test_sample_shards_have_the_exact_tali_schema(sample_root):
    for path in (sample_root / "data").glob("*.parquet"):
        assert pq.read_schema(path).remove_metadata().equals(TALI_SCHEMA)


def test_submodalities_by_modality():
    assert SubModality.of_modality("image") == (
        SubModality.WIKIPEDIA_CAPTION_IMAGE,
        SubModality.YOUTUBE_RANDOM_VIDEO_FRAME,
        SubModality.YOUTUBE_THUMBNAIL_IMAGE,
    )
    assert len(SubModality.of_modality(Modality.TEXT)) == 6
    assert parse_submodalities(["audio", "youtube_title_text"]) == (
        SubModality.YOUTUBE_TITLE_TEXT,
        SubModality.YOUTUBE_CONTENT_AUDIO,
    )
    with pytest.raises(ValueError, match="unknown sub-modality 'smell'.*expected one of"):
        parse_submodalities(["smell"])


def test_text_only_configs_never_read_video_bytes():
    text = columns_for(parse_submodalities(["text"]))
    assert "youtube_video_content" not in text and "image" not in text
    assert "youtube_video_content" in columns_for(parse_submodalities(["audio"]))
    assert columns_for(parse_submodalities(["wikipedia_caption_text"])) == ["item_idx", "wit_features"]
    with_thumb = columns_for(
        [SubModality.YOUTUBE_THUMBNAIL_IMAGE], available=[c.name for c in TALI_SCHEMA] + ["youtube_thumbnail"]
    )
    assert "youtube_thumbnail" in with_thumb


@pytest.mark.parametrize(
    "build, match",
    [
        (
            lambda: VideoConfig(selection="every"),
            r"VideoConfig.selection='every' is not allowed; choose one of 'random', 'uniform', 'sequential'",
        ),
        (lambda: VideoConfig(num_frames=0), "num_frames must be an int >= 1"),
        (lambda: VideoConfig(output="bf16"), "output='bf16'"),
        (lambda: WindowConfig(seconds=-1), "seconds must be > 0"),
        (lambda: WindowConfig(start="middle"), "start='middle' is not allowed"),
        (lambda: AudioConfig(on_missing="ignore"), "on_missing='ignore'"),
        (lambda: AudioConfig(sample_rate=8), "sample_rate must be an int >= 1000"),
        (lambda: TextConfig(subtitles="all"), "subtitles='all'"),
        (lambda: TaliConfig(modalities=["smell"]), "unknown sub-modality"),
        (lambda: TaliConfig(video=WindowConfig()), "TaliConfig.video must be a VideoConfig"),
    ],
)
def test_bad_config_values_are_named_with_the_allowed_ones(build, match):
    with pytest.raises(TaliConfigError, match=match):
        build()


def test_config_is_frozen_hashable_picklable_and_fingerprinted():
    config = TaliConfig(modalities=["video", "text"])
    with pytest.raises(AttributeError):
        config.seed = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(config)) == config
    assert hash(config) == hash(TaliConfig(modalities=["text", "video"]))
    assert config.fingerprint() == TaliConfig(modalities=["text", "video"]).fingerprint()
    assert config.fingerprint() != config.replace(video=VideoConfig(num_frames=4)).fingerprint()
    assert config.needs_clip and not TaliConfig(modalities=["text"]).needs_clip
