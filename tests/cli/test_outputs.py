"""Outputs apart from sources (issue 24.2), one writer per prepare output (24.3), and one
rule for the SOURCE word ``sample`` in every command (issue 25.A3)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tali.cli.main import main
from tali.outputs import OutputOverlapError, check_output_apart
from tali.prepare import prepare
from tali.quality import compute_metrics, validate


@pytest.fixture()
def source(sample_root, tmp_path) -> Path:
    """A copy of the sample's test split (4 rows), in Hub layout."""
    root = tmp_path / "src"
    (root / "data").mkdir(parents=True)
    shutil.copy(sample_root / "data" / "test-00000-of-00001.parquet", root / "data")
    return root


def _parquet_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))


@pytest.mark.parametrize(
    "args",
    [
        ["prepare", "{src}", "{src}/data"],  # wrote SRC/data/data/*.parquet: validate then read 8 rows
        ["prepare", "{src}", "{src}"],
        ["prepare", "{src}/data/test-00000-of-00001.parquet", "{src}/data"],
        ["metrics", "{src}", "--out", "{src}/data/m.parquet"],
        ["metrics", "{src}", "--out", "{src}/data/test-00000-of-00001.parquet"],
        ["validate", "{src}", "--report", "{src}/report.json"],
        ["filter", "{src}", "--split", "test", "--out", "{src}/clean"],
        ["filter", "{src}", "--split", "test", "--index", "{src}/data/keep.json"],
        ["stats", "{src}", "--split", "test", "--out", "{src}/stats"],
        ["stats", "{src}", "--split", "test", "--json", "{src}/data/s.json"],
    ],
)
def test_an_output_in_a_source_is_refused_before_any_work(source, args, capsys):
    before = {p: p.stat().st_mtime_ns for p in source.rglob("*")}
    assert main([a.format(src=source) for a in args]) == 1
    err = capsys.readouterr().err
    assert "the source" in err and ("lies inside" in err or " is " in err or "contains" in err), err
    assert {p: p.stat().st_mtime_ns for p in source.rglob("*")} == before  # not even a lock file
    assert _parquet_files(source) == ["data/test-00000-of-00001.parquet"]
    assert validate(source).rows == 4


def test_the_library_entry_points_refuse_it_too(source):
    with pytest.raises(OutputOverlapError, match="lies inside the source"):
        prepare(source, source / "data" / "sub")
    with pytest.raises(OutputOverlapError, match="is the source"):
        compute_metrics(
            source / "data" / "test-00000-of-00001.parquet",
            out=source / "data" / "test-00000-of-00001.parquet",
        )
    with pytest.raises(OutputOverlapError, match="contains the source"):
        validate(source / "data", report=source)
    # A symlink into the source is inside it.
    link = source.parent / "link"
    link.symlink_to(source / "data")
    with pytest.raises(OutputOverlapError, match="is the source"):
        check_output_apart(link, [source / "data"])
    check_output_apart(source.parent / "elsewhere", [source])  # apart: no error


def test_sample_data_never_replaces_a_directory_it_did_not_write(source, capsys):
    assert main(["sample-data", str(source), "--force"]) == 1
    assert "without truth.json" in capsys.readouterr().err
    assert _parquet_files(source) == ["data/test-00000-of-00001.parquet"]


def _prepare_process(source: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tali.cli.main",
            "prepare",
            str(source),
            str(out),
            "--no-progress",
            "--preset",
            "ultrafast",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


@pytest.mark.slow
def test_two_prepare_runs_into_one_out_both_finish(sample_root, tmp_path):
    """Two real processes into one --out: once, one died with `No such file or directory`
    on the other's staging file (each removed the partial shards it found)."""
    root = tmp_path / "two"
    (root / "data").mkdir(parents=True)
    table = pq.read_table(sample_root / "data" / "test-00000-of-00001.parquet")
    for k in range(2):  # two shards of two rows: both runs have a shard to be working on
        pq.write_table(table.slice(2 * k, 2), root / "data" / f"test-0000{k}-of-00002.parquet")
    out = tmp_path / "out"
    runs = [_prepare_process(root, out), _prepare_process(root, out)]
    results = [run.communicate(timeout=600) for run in runs]
    for run, (stdout, stderr) in zip(runs, results):
        assert run.returncode == 0, stderr
        assert "4 of 4 rows re-encoded" in stdout, stdout
    assert _parquet_files(out) == [f"data/test-0000{k}-of-00002.parquet" for k in range(2)]
    assert pa.concat_tables([pq.read_table(p) for p in sorted(out.rglob("*.parquet"))]).num_rows == 4
    assert validate(out).ok


def test_sample_names_the_built_in_dataset_in_every_command(sample_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TALI_CACHE_DIR", str(sample_root.parent))
    monkeypatch.chdir(tmp_path)  # no ./sample here
    assert main(["validate", "sample", "--split", "test", "--checks", "item_idx", "--no-progress"]) == 0
    assert f"built-in sample dataset at {sample_root}" in capsys.readouterr().err
    assert main(["filter", "sample", "--split", "test", "--index", "keep.json"]) == 0
    assert "built-in sample dataset" in capsys.readouterr().err
    assert main(["metrics", "sample", "--split", "test", "--out", "m.parquet", "--no-progress"]) == 0
    assert pq.read_table("m.parquet").num_rows == 4


def test_a_local_sample_directory_wins_and_is_named(source, tmp_path, monkeypatch, capsys):
    local = tmp_path / "sample"
    shutil.copytree(source, local)
    pq.write_table(
        pq.read_table(local / "data" / "test-00000-of-00001.parquet").slice(0, 1),
        local / "data" / "test-00000-of-00001.parquet",
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "sample", "--checks", "item_idx", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert f"reading the local path {local}" in captured.err
    assert "0 of 1 rows failed" in captured.out  # the local copy's 1 row, not the built-in 24
    assert main(["stats", "sample", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 1
