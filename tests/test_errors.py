"""Bad input raises the documented typed error naming the row and the field."""

from __future__ import annotations

import pickle

import pytest
import torch

import tali
from tali import (
    AudioConfig,
    TaliConfig,
    TaliDecodeError,
    TaliImageError,
    TaliMissingStreamError,
    TaliSchemaError,
    TaliSubtitleError,
    TaliTransform,
)
from tali.errors import TaliDataError

VIDEO = "youtube_video_content"


def _run(row, modalities, **config):
    return TaliTransform(TaliConfig(modalities=modalities, **config))(row, key=0)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda b: b[: len(b) // 10], "cannot (open|probe|decode)"),
        (lambda b: b[:2000], "cannot (open|probe|decode)"),
        (lambda b: b"", "empty or null"),
        (lambda b: None, "empty or null"),
        (lambda b: bytes(range(256)) * 64, "cannot open"),
        (lambda b: b"\x00" * 5000, "cannot open"),
    ],
    ids=["truncated-90pct", "truncated-header", "empty", "null", "garbage", "zeros"],
)
def test_bad_clip_bytes_raise_decode_error_naming_row_and_field(rows, mutate, match):
    row = dict(rows[3], youtube_video_content=mutate(rows[3][VIDEO]))
    with pytest.raises(TaliDecodeError, match=match) as info:
        _run(row, ["video", "audio"])
    assert info.value.item_idx == 3 and info.value.field == VIDEO
    assert "item_idx=3" in str(info.value) and f"field={VIDEO}" in str(info.value)


def test_truncated_clip_never_hangs_or_escapes_untyped(rows):
    data = rows[0][VIDEO]
    for cut in (0.3, 0.5, 0.7, 0.95):
        row = dict(rows[0], youtube_video_content=data[: int(len(data) * cut)])
        config = TaliConfig(modalities=["video", "audio"], window=tali.WindowConfig(seconds=3.0, start=25.0))
        try:
            sample = TaliTransform(config)(row, key=0)
        except TaliDecodeError as exc:
            assert exc.item_idx == 0 and exc.field == VIDEO
        else:  # a truncation after the window may still decode: then it must be right
            assert sample["youtube_content_video"]["frames"].shape == (8, 3, 224, 224)


def test_audio_from_a_clip_without_audio(rows, truth):
    item = next(i for i, t in truth.items() if not t["has_audio"])
    with pytest.raises(TaliMissingStreamError, match="no audio stream") as info:
        _run(rows[item], ["audio"], audio=AudioConfig(on_missing="error"))
    assert info.value.item_idx == item
    assert "on_missing='zeros'" in str(info.value)  # says how to choose the other behaviour
    sample = _run(rows[item], ["audio", "video"], audio=AudioConfig(on_missing="zeros"))
    audio = sample["youtube_content_audio"]
    assert audio["missing"] is True and audio["valid_samples"] == 0
    assert audio["waveform"].shape == (48_000,) and not audio["waveform"].any()


@pytest.mark.parametrize(
    "image, match",
    [
        ({"bytes": b"not an image at all", "path": None}, "cannot decode image"),
        ({"bytes": None, "path": "/etc/passwd"}, "empty or null"),
        (None, "empty or null"),
    ],
)
def test_unreadable_image(rows, image, match):
    row = dict(rows[0], image=image)
    with pytest.raises(TaliImageError, match=match) as info:
        _run(row, ["wikipedia_caption_image"])
    assert info.value.field == "image" and info.value.item_idx == 0


def test_truncated_image(rows):
    data = rows[0]["image"]["bytes"]
    row = dict(rows[0], image={"bytes": data[: len(data) // 3], "path": None})
    with pytest.raises(TaliImageError, match="cannot decode image"):
        _run(row, ["wikipedia_caption_image"])


def test_image_over_the_pixel_limit_is_rejected_before_decoding(rows):
    with pytest.raises(TaliImageError, match="over the 1000-pixel limit"):
        _run(rows[0], ["wikipedia_caption_image"], image=tali.ImageConfig(max_pixels=1000))


@pytest.mark.parametrize(
    "text, match",
    [
        ("- just\n- a list\n", "must be a mapping"),
        ("plain text", "must be a mapping"),
        ("{not: [valid", "not valid YAML"),
        ("'abc': hello\n", "is not a number of seconds"),
        ("'1.0': {nested: map}\n", "string or a list of strings"),
        ("!!python/object/apply:os.system ['echo hi']", "unsupported YAML tag"),
        ("'1.0': !!python/object/apply:os.system ['echo hi']", "unsupported YAML tag"),
        ("'1': &a [x, x]\n'2': &b [*a, *a]\n'3': &c [*b, *b]\n", "string or a list of strings"),
    ],
    ids=["list", "scalar", "broken", "bad-key", "nested", "python-tag", "python-tag-value", "alias-bomb"],
)
def test_subtitles_that_are_not_a_timestamp_mapping(rows, text, match):
    row = dict(rows[0], youtube_subtitle_text=text)
    with pytest.raises(TaliSubtitleError, match=match) as info:
        _run(row, ["youtube_subtitle_text"])
    assert info.value.field == "youtube_subtitle_text" and info.value.item_idx == 0


@pytest.mark.parametrize("text", [None, "", "   \n", "{}", "null"])
def test_empty_or_missing_subtitles_give_empty_text(rows, text):
    row = dict(rows[0], youtube_subtitle_text=text)
    assert _run(row, ["youtube_subtitle_text"])["youtube_subtitle_text"] == {"text": "", "num_lines": 0}


def test_bad_start_time(rows):
    row = dict(rows[0], youtube_video_starting_time="soon")
    with pytest.raises(TaliDataError, match="not a number of seconds") as info:
        _run(row, ["youtube_subtitle_text"])
    assert info.value.field == "youtube_video_starting_time"


@pytest.mark.parametrize(
    "wit, match",
    [
        (None, "must be a struct"),
        ({"language": []}, "missing or empty"),
        ({"language": ["en", "de"], "page_title": ["only one"]}, "has 1 entries but there are 2 languages"),
    ],
)
def test_malformed_wit_features(rows, wit, match):
    row = dict(rows[0], wit_features=wit)
    with pytest.raises(TaliSchemaError, match=match) as info:
        _run(row, ["wikipedia_caption_text"])
    assert info.value.field.startswith("wit_features") and isinstance(info.value, KeyError)


def test_missing_column_is_a_schema_error(rows):
    row = {k: v for k, v in rows[0].items() if k != VIDEO}
    with pytest.raises(TaliSchemaError, match="no youtube_video_content column"):
        _run(row, ["video"])


def test_errors_keep_their_location_across_processes(rows):
    err = TaliDecodeError("bad bytes", item_idx=5, field=VIDEO).with_location(shard="s.parquet", row=2)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is TaliDecodeError and str(back) == str(err)
    assert (back.item_idx, back.field, back.shard, back.row) == (5, VIDEO, "s.parquet", 2)
    assert isinstance(back, ValueError)


def test_dataset_error_names_shard_and_row_through_workers(sample_root):
    config = TaliConfig(modalities=["audio"], audio=AudioConfig(on_missing="error"))
    dataset = tali.TaliDataset(sample_root, split="train", config=config)
    loader = tali.make_loader(dataset, batch_size=2, num_workers=2)
    with pytest.raises(
        TaliMissingStreamError, match=r"item_idx=7.*shard=train-00000-of-00002.parquet, row=7"
    ):
        for _ in loader:
            pass


@pytest.mark.parametrize("on_error", ["skip", "substitute"])
def test_skip_and_substitute_policies_count_every_row(sample_root, truth, on_error):
    from tali.data.policy import ErrorReport

    dataset = tali.TaliDataset(
        sample_root,
        split="train",
        config=TaliConfig(modalities=["audio"], audio=AudioConfig(on_missing="error")),
        on_error=on_error,
    )
    report = ErrorReport()
    sizes = []
    for batch in tali.make_loader(dataset, batch_size=4, num_workers=2):
        report.update(batch)
        sizes.append(batch["youtube_content_audio"]["waveform"].shape[0])
    no_audio = [i for i, t in truth.items() if t["split"] == "train" and not t["has_audio"]]
    assert sizes == [4, 4, 4, 4], "batch sizes hold"
    assert [r.item_idx for r in report.skipped] == no_audio
    assert report.skipped[0].error == "TaliMissingStreamError" and report.skipped[0].shard.startswith(
        "train-"
    )
    assert report.yielded + len(report.skipped) - report.substituted == report.read
    if on_error == "substitute":
        assert report.substituted == len(no_audio)
    else:
        assert report.substituted == 0


def test_substitute_placeholder_has_the_shapes_of_a_real_sample(sample_root):
    dataset = tali.TaliDataset(
        sample_root,
        split="train",
        config=TaliConfig(audio=AudioConfig(on_missing="error")),
        on_error="substitute",
    )
    good, bad = dataset[0], dataset[7]
    assert bad["valid"] is False and good["valid"] is True
    batch = tali.collate([good, bad])
    assert batch["youtube_content_video"]["frames"].shape == (2, 8, 3, 224, 224)
    assert batch["youtube_content_audio"]["waveform"].shape == (2, 48_000)
    assert batch["valid"].tolist() == [True, False]
    assert torch.count_nonzero(batch["youtube_content_video"]["frames"][1]) == 0
