"""The clip-length index: a text-only config draws the window a video config draws."""

from __future__ import annotations

import json
import shutil

import pytest

from tali import TaliConfig, TaliDataset
from tali.cli.main import main
from tali.config import WindowConfig
from tali.data.durations import FILE_NAME, MAX_FILE_BYTES, DurationsIndexWarning, digest, load_durations

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
    with pytest.warns(DurationsIndexWarning, match="version 99"):
        assert load_durations(sorted((real_copy / "data").glob("*.parquet"))) is None


# --- issue 24.5: the index is input, not truth -------------------------------------------

_NOMINAL = 30.0


def _clip_seconds(root) -> dict[int, float]:
    """item_idx -> the clip length a text-only config's window was drawn for."""
    config = TaliConfig(modalities=("youtube_subtitle_text",), seed=SEED, window=WindowConfig(seconds=1.5))
    ds = TaliDataset(root, split="realworld", config=config)
    return {ds[i]["item_idx"]: ds[i]["window"]["clip_seconds"] for i in range(len(ds))}


@pytest.fixture()
def indexed(real_copy):
    """The realworld split as two shards, indexed; returns (root, true lengths by item_idx)."""
    import pyarrow.parquet as pq

    (shard,) = (real_copy / "data").glob("realworld-*.parquet")
    table = pq.read_table(shard)
    shard.unlink()
    for k, piece in enumerate((table.slice(0, 8), table.slice(8))):
        pq.write_table(piece, real_copy / "data" / f"realworld-0000{k}-of-00002.parquet", row_group_size=4)
    assert main(["durations", str(real_copy)]) == 0
    truth = _clip_seconds(real_copy)
    assert len(set(truth.values())) > 3 and sum(v != _NOMINAL for v in truth.values()) >= 12
    return real_copy, truth


def _edit(root, change) -> None:
    path = root / "data" / FILE_NAME
    blob = json.loads(path.read_text())
    for entry in blob["shards"].values():
        entry["clip_seconds"] = change(entry["clip_seconds"])
    path.write_text(json.dumps(blob))


@pytest.mark.parametrize(
    "change",
    [
        lambda c: {k: v * 10 for k, v in c.items()},
        lambda c: {k: v * 0.1 for k, v in c.items()},
        lambda c: dict(zip(c, list(c.values())[1:] + list(c.values())[:1])),  # shuffled ids
    ],
    ids=["x10", "x0.1", "shuffled"],
)
def test_an_edited_index_is_not_used(indexed, change):
    root, _ = indexed
    _edit(root, change)
    with pytest.warns(DurationsIndexWarning, match="digest does not match"):
        seconds = _clip_seconds(root)
    assert set(seconds.values()) == {_NOMINAL}


@pytest.mark.parametrize("value", [float("inf"), 1e308, 1e-9, True, -2.0, "2.0"])
def test_every_value_is_checked_even_with_a_recomputed_digest(indexed, value):
    root, _ = indexed
    path = root / "data" / FILE_NAME
    blob = json.loads(path.read_text())
    first = next(iter(blob["shards"].values()))
    first["clip_seconds"][next(iter(first["clip_seconds"]))] = value
    blob["digest"] = digest(blob["shards"], blob["max_clip_seconds"])
    path.write_text(json.dumps(blob))
    with pytest.warns(DurationsIndexWarning, match="invalid lengths"):
        assert load_durations(sorted((root / "data").glob("*.parquet"))) is None


@pytest.mark.parametrize("value", [float("inf"), 1e308, 1e-9, True])
def test_a_version_1_index_still_works_without_its_bad_values(indexed, value):
    root, truth = indexed
    clips = {str(k): v for k, v in truth.items()}
    bad_id = next(iter(clips))
    clips[bad_id] = value
    (root / "data" / FILE_NAME).write_text(json.dumps({"version": 1, "clip_seconds": clips}))
    with pytest.warns(DurationsIndexWarning, match="version-1 index.*1 invalid lengths left out"):
        seconds = _clip_seconds(root)
    assert seconds == {**truth, int(bad_id): _NOMINAL}


def test_a_changed_shard_falls_back_to_the_nominal_length(indexed):
    """The index was written before shard 1 changed: its clips get the nominal length, shard 0's keep theirs."""
    import pyarrow.parquet as pq

    root, truth = indexed
    changed = root / "data" / "realworld-00001-of-00002.parquet"
    table = pq.read_table(changed)
    pq.write_table(table.take(list(reversed(range(table.num_rows)))), changed, row_group_size=2)
    moved = set(table.column("item_idx").to_pylist())
    with pytest.warns(DurationsIndexWarning, match="realworld-00001-of-00002.parquet is .* bytes.*stale"):
        seconds = _clip_seconds(root)
    assert seconds == {k: (_NOMINAL if k in moved else v) for k, v in truth.items()}


@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "huge"])
def test_the_index_is_read_within_bounds(real_copy, kind):
    import os
    import time

    path = real_copy / "data" / FILE_NAME
    if kind == "dev_zero":
        path.symlink_to("/dev/zero")  # once read until 4 GB
    elif kind == "fifo":
        os.mkfifo(path)  # once waited forever for a writer
    else:
        with open(path, "wb") as f:  # sparse: no disk used
            f.truncate(MAX_FILE_BYTES + 1)
    started = time.monotonic()
    with pytest.warns(DurationsIndexWarning, match="not a regular file|over the"):
        assert load_durations(sorted((real_copy / "data").glob("*.parquet"))) is None
    assert time.monotonic() - started < 1.0
