"""The typed sample: one set of modality readers behind the transform, the bad-row
placeholder, the augmentation and every entry point's seed key."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest
import torch

from tali import TaliConfig, TaliDataset, TaliStream, TextConfig, VideoConfig, WindowConfig, make_loader
from tali.augment import AudioAugment, Augment, SpatialAugment, TimeAugment
from tali.data.policy import ErrorReport, placeholder_sample
from tali.data.sources import resolve_local_files
from tali.errors import TaliDataError, TaliSubtitleError
from tali.pipeline import AugmentStage, Pipeline, UserStage
from tali.sample import AudioWindow, Subtitles, VideoFrames
from tali.transform import TaliTransform

AV_TEXT = TaliConfig(
    modalities=(
        "youtube_content_video",
        "youtube_content_audio",
        "youtube_subtitle_text",
        "youtube_title_text",
    ),
    window=WindowConfig(seconds=2.0),
    video=VideoConfig(num_frames=3, size=64),
    seed=11,
)


@pytest.fixture(autouse=True)
def importable_stages(monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent.parent))


def test_substitute_with_an_augment_stage_batches(sample_root):
    """The placeholder of a bad row goes through the augment stage too: before, it lacked
    ``augment`` and ``output_seconds`` and collate failed ("samples disagree on keys")."""
    files = resolve_local_files(sample_root, "train")
    bad = UserStage("tests.pipeline.user_stages:fail_on", item_idx=3)
    pipe = Pipeline(AV_TEXT, ["decode", bad, AugmentStage(Augment.default())])
    report = ErrorReport()
    batches = list(make_loader(TaliDataset(files=files, pipeline=pipe, on_error="substitute"), batch_size=8))
    for batch in batches:
        report.update(batch)
    assert report.substituted == 1 and [r.item_idx for r in report.skipped] == [3]
    batch = next(b for b in batches if not bool(b["valid"].all()))
    n = len(batch["valid"])
    assert batch["augment"]["time"]["speed"].shape == (n,)
    assert batch["youtube_content_video"]["output_seconds"].shape == (n, 3)
    placeholder = int((~batch["valid"]).nonzero()[0, 0])
    assert batch["item_idx"][placeholder] == 3
    assert not batch["youtube_content_video"]["mask"][placeholder].any()
    assert batch["youtube_subtitle_text"]["num_lines"][placeholder] == 0
    stream = TaliStream(files, pipeline=pipe, on_error="substitute", shuffle=False)
    assert sum(int((~b["valid"]).sum()) for b in stream.loader(batch_size=8, num_workers=0)) == 1


def test_time_augment_reads_subtitles_with_every_budget(rows):
    """With ``Augment(time=...)`` subtitles were parsed with the byte budget only: the node
    budget the plain path enforces was ignored."""
    row = next(r for r in rows.values() if (r["youtube_subtitle_text"] or "").count("\n") > 20)
    config = AV_TEXT.replace(text=TextConfig(max_subtitle_nodes=10))
    with pytest.raises(TaliSubtitleError, match="node"):
        TaliTransform(config)(row, key=0)
    pipe = Pipeline(config, ["decode", AugmentStage(Augment(time=TimeAugment(speed=(1.1, 1.1))))])
    with pytest.raises(TaliSubtitleError, match="node"):
        pipe(row, key=0)


def test_placeholder_has_the_layout_of_a_good_sample(rows):
    """Placeholder and good sample come from the same readers: same keys, shapes, dtypes."""
    config = AV_TEXT.replace(
        modalities=AV_TEXT.modalities
        + ("youtube_random_video_frame", "wikipedia_caption_text", "wikipedia_caption_image")
    )
    row = next(r for r in rows.values() if r.get("wit_features"))
    good = TaliTransform(config)(row, key=0)
    empty = placeholder_sample(config, key=0, epoch=0, item_idx=None)

    def layout(value):
        if isinstance(value, dict):
            return {k: layout(v) for k, v in value.items()}
        if isinstance(value, torch.Tensor):
            return (tuple(value.shape), value.dtype)
        return type(value).__name__

    good_layout, empty_layout = layout(good), layout(empty)
    good_layout["youtube_random_video_frame"]["pts_seconds"] = "float"
    assert good_layout == empty_layout


def test_output_types_check_shapes_and_show_shapes_only():
    frames = VideoFrames(
        torch.zeros(2, 3, 4, 4, dtype=torch.uint8),
        torch.zeros(2, dtype=torch.float64),
        torch.ones(2, dtype=torch.bool),
    )
    assert repr(frames) == "VideoFrames(frames=[2, 3, 4, 4] uint8, real=2, rotation=0)"
    assert set(frames.to_dict()) == {"frames", "pts_seconds", "mask", "rotation"}
    with pytest.raises(TaliDataError, match="3 frames for 2 slots"):
        VideoFrames(torch.zeros(3, 3, 4, 4), torch.zeros(2), torch.ones(2, dtype=torch.bool))
    with pytest.raises(TaliDataError, match="valid_samples 9 outside"):
        AudioWindow(torch.zeros(4), 16_000, 9, False)
    with pytest.raises(TaliDataError, match="line_seconds"):
        Subtitles("a", 2, torch.zeros(1), ["a"])


# -- one seed key -------------------------------------------------------------------------------


def test_every_entry_point_gives_a_row_the_same_window(sample_root):
    """Loaders keyed randomness by the row's position, hf/ray by item_idx: val row 0 got
    26.34 s in one and 1.77 s in the other. Now all key by item_idx."""
    from tali.data.rows import row_to_python
    from tali.hf import as_transform
    from tali.ray.data import TaliBatchTransform
    from tali.view.sample import SampleParams, decode_window

    files = resolve_local_files(sample_root, "val")
    config = TaliConfig(
        modalities=("youtube_content_video", "youtube_content_audio", "youtube_subtitle_text"),
        window=WindowConfig(seconds=2.0, start="random"),
        video=VideoConfig(num_frames=8, size=224),
        seed=0,
    )
    table = pa.concat_tables([__import__("pyarrow.parquet").parquet.read_table(f) for f in files])
    position = 1
    row = row_to_python(table, position)
    assert row["item_idx"] != position  # else the two keys agree by chance
    starts = {
        "TaliDataset": TaliDataset(files=files, config=config)[position]["window"]["start_seconds"],
        "TaliStream": [s for s in TaliStream(files, config=config, shuffle=False)][position]["window"][
            "start_seconds"
        ],
        "tali.hf": as_transform(config)(row)["window"]["start_seconds"],
        "tali.ray": float(TaliBatchTransform(config)(table.slice(position, 1))["window.start_seconds"][0]),
        "tali.view": decode_window(
            row, key=position, params=SampleParams(seconds=2.0, start="random")
        ).start_seconds,
    }
    assert len(set(starts.values())) == 1, starts
    # A filtered split (the row at another position) keeps the row's window.
    alone = TaliDataset(files=files, config=config, item_ids=[row["item_idx"]])[0]
    assert alone["window"]["start_seconds"] == starts["TaliDataset"]


# -- augmentation parts ------------------------------------------------------------------------


def test_naming_one_augmentation_part_turns_on_only_that_part(rows):
    """``Augment(spatial=SpatialAugment(flip_p=1.0))`` also applied speed, gain, noise, crops,
    colour jitter and grayscale, because every part and field defaulted on."""
    from tali.pipeline.spec import pipeline_from_dict

    config = AV_TEXT.replace(modalities=("youtube_content_video", "youtube_content_audio"))
    row = rows[0]
    plain = TaliTransform(config)(row, key=0)
    for augment in (
        Augment(spatial=SpatialAugment(flip_p=1.0)),
        pipeline_from_dict(
            {"stages": ["decode", {"augment": {"spatial": {"flip_p": 1.0}}}]}, config=config
        ).augment,
    ):
        assert augment == Augment(spatial=SpatialAugment(flip_p=1.0))
        out = Pipeline(config, ["decode", AugmentStage(augment)])(row, key=0)
        assert set(out["augment"]) == {"time", "spatial.youtube_content_video"}
        assert out["augment"]["time"]["speed"] == 1.0
        assert torch.equal(
            out["youtube_content_video"]["frames"], plain["youtube_content_video"]["frames"].flip(-1)
        )
        assert torch.equal(
            out["youtube_content_audio"]["waveform"], plain["youtube_content_audio"]["waveform"]
        )
    recommended = Augment.default()
    assert pipeline_from_dict({"stages": ["decode", {"augment": "default"}]}).augment == recommended
    assert recommended.time == TimeAugment(speed=(0.9, 1.1)) and recommended.audio == AudioAugment.default()
    assert recommended.spatial is not None and recommended.spatial.crop_scale == (0.6, 1.0)


# -- the lazy root namespace ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "most"), [("TaliConfig", 8), ("TaliError", 3), ("SubModality", 3)])
def test_one_attribute_imports_only_its_owner(name, most):
    """Any attribute of ``tali`` imported all its modules (88) and torch."""
    code = (
        f"import sys, tali; tali.{name}; "
        "print(len([m for m in sys.modules if m.split('.')[0] == 'tali']), 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(out[0]) <= most and out[1] == "False", out


def test_error_report_on_a_batch_without_records_is_a_config_error():
    """A bare ValueError before; the public path raises the typed error (still a ValueError)."""
    from tali.errors import TaliConfigError

    with pytest.raises(TaliConfigError, match="no 'errors' entry: was the loader built with on_error="):
        ErrorReport().update({"item_idx": torch.zeros(2)})
