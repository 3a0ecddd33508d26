"""``validate`` / ``tali validate`` on the clean sample dataset and on a doctored copy."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tali.cli.main import main
from tali.errors import TaliConfigError, TaliSourceError
from tali.jobs import part_path
from tali.quality import ALL_CHECKS, CheckLimits, validate
from tali.quality.checks import columns_for_checks
from tali.quality.mutate import mutants_to_table, mutate
from tali.quality.validate import _ValidateShard, parts_dir_for

#: mutation -> (check, error class, field) validate must report for it
DOCTORED = {
    "clip.truncate_head": ("clip", "TaliDecodeError", "youtube_video_content"),
    "clip.no_video": ("clip", "TaliMissingStreamError", "youtube_video_content"),
    "image.bomb": ("image", "TaliImageError", "image"),
    "subtitles.list": ("subtitles", "TaliSubtitleError", "youtube_subtitle_text"),
    "subtitles.billion_laughs": ("subtitles", "TaliSubtitleError", "youtube_subtitle_text"),
    "wit.mismatched_lengths": ("wit", "TaliSchemaError", "wit_features."),
    "start.not_number": ("start_time", "TaliDataError", "youtube_video_starting_time"),
    "text.title_invalid_utf8": ("read", "TaliSchemaError", "youtube_title_text"),
    "text.title_huge": ("texts", "TaliDataError", "youtube_title_text"),
}


@pytest.fixture(scope="module")
def doctored(sample_root, tmp_path_factory):
    """A Hub-layout source: shard 0 = the 4 clean val rows, shard 1 = one doctored row per mutation."""
    root = tmp_path_factory.mktemp("doctored")
    (root / "data").mkdir()
    clean = pq.read_table(sample_root / "data" / "val-00000-of-00001.parquet")
    pq.write_table(clean, root / "data" / "val-00000-of-00002.parquet", row_group_size=3)
    base = clean.slice(0, 1).to_pylist()[0]
    mutants = []
    for k, kind in enumerate(DOCTORED):
        m = mutate(base, kind, seed=k)
        m.row["item_idx"] = 500 + k
        mutants.append(m)
    pq.write_table(mutants_to_table(mutants), root / "data" / "val-00001-of-00002.parquet", row_group_size=4)
    return root


def test_clean_sample_dataset_passes_with_two_workers(sample_root, truth):
    report = validate(sample_root, workers=2, progress=True)  # the per-row progress queue path
    assert report.ok and report.rows == len(truth) and report.failures == []
    assert report.summary()["by_check"] == {name: {} for name in ALL_CHECKS}


def test_every_doctored_row_is_reported_with_its_location(doctored, tmp_path):
    out = tmp_path / "report.json"
    report = validate(doctored, split="val", report=out, limits=CheckLimits(max_text_chars=10_000))
    assert not report.ok and report.rows == 4 + len(DOCTORED)
    by_item = {f.item_idx: f for f in report.failures}
    for k, (kind, (check, error, field)) in enumerate(DOCTORED.items()):
        failure = by_item[500 + k]
        assert (failure.check, failure.error) == (check, error), kind
        assert failure.field.startswith(field), (kind, failure.field)
        assert (failure.shard, failure.row) == ("val-00001-of-00002.parquet", k)
        assert failure.message
    assert not {16, 17, 18, 19} & set(by_item)  # the clean rows
    blob = json.loads(out.read_text())
    assert blob["summary"]["failed_rows"] == len(DOCTORED)
    assert {f["item_idx"] for f in blob["failures"]} == set(by_item)
    assert set(blob["failures"][0]) == {"item_idx", "shard", "row", "check", "field", "error", "message"}
    assert not (tmp_path / "report.json.parts").exists()


def test_cli_exit_status_gates_a_pipeline(doctored, sample_root, tmp_path, capsys):
    assert main(["validate", str(sample_root), "--split", "test", "--no-progress"]) == 0
    assert "0 of 4 rows failed" in capsys.readouterr().out
    out = tmp_path / "r.json"
    assert (
        main(
            [
                "validate",
                str(doctored),
                "--split",
                "val",
                "--report",
                str(out),
                "--no-progress",
                "--checks",
                "subtitles,start_time",
            ]
        )
        == 1
    )
    printed = capsys.readouterr().out
    assert "TaliSubtitleError" in printed and "3 of 13 rows failed" in printed
    assert json.loads(out.read_text())["checks"] == ["subtitles", "start_time"]


def test_interrupted_run_resumes_from_finished_shards(doctored, tmp_path):
    """A run that died after shard 1 left its part; the rerun reuses it and does shard 0."""
    out = tmp_path / "resume.json"
    checks = ("subtitles",)
    shards = sorted(str(p) for p in (doctored / "data").glob("val-*.parquet"))
    part = part_path(parts_dir_for(out, checks, CheckLimits()), shards[1], ".json")
    part.parent.mkdir(parents=True)
    _ValidateShard(checks, CheckLimits())(shards[1], part)
    blob = json.loads(part.read_text())
    blob["failures"][0]["message"] = "from the interrupted run"
    part.write_text(json.dumps(blob))
    resumed = validate(doctored, split="val", checks=checks, report=out)
    assert resumed.rows == 4 + len(DOCTORED)
    assert "from the interrupted run" in {f.message for f in resumed.failures}
    assert resumed.failed_rows == 2  # billion laughs and the list, nothing counted twice


def test_checks_read_only_their_columns(sample_root, tmp_path):
    assert columns_for_checks(
        ("subtitles",),
        tuple(pa.schema([]).names) + ("item_idx", "youtube_subtitle_text", "youtube_video_content"),
    ) == ["item_idx", "youtube_subtitle_text"]
    # A shard of text columns only validates its text checks without complaint.
    table = pq.read_table(
        sample_root / "data" / "test-00000-of-00001.parquet",
        columns=["item_idx", "youtube_subtitle_text", "youtube_video_starting_time"],
    )
    pq.write_table(table, tmp_path / "text-only.parquet")
    report = validate(tmp_path / "text-only.parquet", checks=["subtitles", "start_time"])
    assert report.ok and report.rows == 4


def test_bad_shards_are_reported_not_fatal(sample_root, tmp_path):
    table = pq.read_table(sample_root / "data" / "test-00000-of-00001.parquet", columns=["item_idx"])
    wrong = table.set_column(0, "item_idx", table.column(0).cast(pa.string()))
    pq.write_table(wrong, tmp_path / "a-wrong-type.parquet")
    (tmp_path / "b-garbage.parquet").write_bytes(b"PAR1 not really parquet")
    report = validate(tmp_path, checks=["item_idx"])
    kinds = {(f.shard, f.check, f.field) for f in report.failures}
    assert ("a-wrong-type.parquet", "parquet", "item_idx") in kinds
    assert any(shard == "b-garbage.parquet" and check == "parquet" for shard, check, _ in kinds)
    assert report.rows == 4  # the wrong-typed rows were still read


def test_duplicate_item_ids_are_failures(sample_root, tmp_path):
    table = pq.read_table(sample_root / "data" / "test-00000-of-00001.parquet", columns=["item_idx"])
    pq.write_table(table, tmp_path / "a.parquet")
    pq.write_table(table.slice(2, 1), tmp_path / "b.parquet")
    report = validate(tmp_path, checks=["item_idx"])
    assert [(f.item_idx, f.shard, f.row, f.message) for f in report.failures] == [
        (22, "b.parquet", 0, "duplicate item_idx 22, first at a.parquet row 2")
    ]


def test_bad_arguments_raise_typed_errors(sample_root, tmp_path):
    with pytest.raises(TaliConfigError, match="unknown checks \\['colour'\\]"):
        validate(sample_root, checks=["colour"])
    with pytest.raises(TaliConfigError, match="workers must be an int >= 0"):
        validate(sample_root, split="test", workers=-1)
    with pytest.raises(TaliSourceError, match="no parquet shards for split 'nope'"):
        validate(sample_root, split="nope")


def test_a_run_killed_midway_redoes_only_unfinished_shards(sample_root, tmp_path, monkeypatch):
    from tali.quality.checks import CHECKS

    out = tmp_path / "train.json"
    check, columns = CHECKS["start_time"]
    checked: list[int] = []

    def dies_on_row_9(row, limits):
        if row["item_idx"] == 9:  # second row of the second train shard
            raise KeyboardInterrupt
        checked.append(row["item_idx"])
        check(row, limits)

    monkeypatch.setitem(CHECKS, "start_time", (dies_on_row_9, columns))
    with pytest.raises(KeyboardInterrupt):
        validate(sample_root, split="train", checks=["start_time"], report=out)
    parts_dir = parts_dir_for(out, ("start_time",), CheckLimits())
    assert [p.name.split("-")[0:2] for p in parts_dir.iterdir()] == [["train", "00000"]]  # no partial file
    assert not out.exists()

    checked.clear()
    monkeypatch.setitem(CHECKS, "start_time", (lambda row, limits: checked.append(row["item_idx"]), columns))
    report = validate(sample_root, split="train", checks=["start_time"], report=out)
    assert report.ok and report.rows == 16
    assert checked == list(range(8, 16))  # only the unfinished shard was checked again
    assert out.exists() and not parts_dir.exists()


def test_validate_with_workers_from_an_unguarded_script(sample_root, tmp_path):
    """docs/QUALITY.md's call at a script's top level, no ``if __name__ == "__main__":``:
    spawned workers must not re-run the script (they used to, and multiprocessing refused)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "check.py"
    script.write_text(
        "from tali.quality import validate\n"
        f"report = validate({str(sample_root)!r}, split='train', workers=2, checks=['item_idx', 'start_time'],"
        " progress=False)\n"
        "print('rows', report.rows, 'failed', report.failed_rows)\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["rows 16 failed 0"]  # printed once: the script ran once
