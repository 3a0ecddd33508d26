"""The clip-length index: a text-only config draws the window a video config draws."""

from __future__ import annotations

import json
import shutil

import pytest

from tali import TaliConfig, TaliDataset
from tali.cli.main import main
from tali.config import WindowConfig
from tali.data.durations import FILE_NAME, load_durations

SEED = 11


@pytest.fixture()
def real_copy(sample_root, tmp_path):
    (tmp_path / "data").mkdir()
    for shard in (sample_root / "data").glob("realworld-*.parquet"):
        shutil.copy(shard, tmp_path / "data" / shard.name)
    return tmp_path


def _windows(root, modalities, window=None):
    config = TaliConfig(modalities=modalities, seed=SEED, window=window or WindowConfig(seconds=1.5))
    ds = TaliDataset(root, split="realworld", config=config)
    return [(ds[i]["window"], ds[i].get("youtube_subtitle_text")) for i in range(len(ds))]


def test_text_only_window_equals_the_video_window_with_the_index(real_copy, truth, capsys):
    assert main(["durations", str(real_copy)]) == 0
    assert FILE_NAME in capsys.readouterr().out
    text = _windows(real_copy, ("youtube_subtitle_text",))
    video = _windows(real_copy, ("youtube_subtitle_text", "youtube_content_video"))
    assert [w for w, _ in text] == [w for w, _ in video]
    assert [s for _, s in text] == [s for _, s in video]
    short = [w for w, _ in text if 1.5 <= w["clip_seconds"] < 2.5]  # a 1.5 s window fits
    assert short and all(
        w["start_seconds"] + w["duration_seconds"] <= w["clip_seconds"] + 1e-9 for w in short
    )


def test_without_the_index_text_only_assumes_the_nominal_length(real_copy):
    assert load_durations([real_copy / "data" / "x.parquet"]) is None
    text = _windows(real_copy, ("youtube_subtitle_text",))
    assert {w["clip_seconds"] for w, _ in text} == {30.0}


def test_subtitles_stop_at_the_clip_end(real_copy, truth):
    """A window longer than a 2 s clip holds no line past the clip's end."""
    main(["durations", str(real_copy)])
    config = TaliConfig(modalities=("youtube_subtitle_text",), seed=SEED, window=WindowConfig(seconds=10.0))
    ds = TaliDataset(real_copy, split="realworld", config=config)
    for i in range(len(ds)):
        sample = ds[i]
        t = truth[sample["item_idx"]]
        if t["subtitle_kind"] not in ("lines", "list_values"):
            continue
        assert sample["youtube_subtitle_text"]["num_lines"] <= int(t["duration_seconds"]) + 1


def test_a_foreign_index_is_ignored(real_copy):
    (real_copy / "data" / FILE_NAME).write_text(json.dumps({"version": 99, "clip_seconds": {"1": 2.0}}))
    assert load_durations(sorted((real_copy / "data").glob("*.parquet"))) is None
