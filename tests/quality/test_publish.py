"""Nothing the user owns is lost or silently partial: `tali filter --out` refuses to overlap its
source, publishes a split in one rename (checked by kill -9 of real processes mid-write), and
readers refuse a split whose numbered shards are not all there."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tali import TaliConfig, TaliDataset
from tali.cli.main import main
from tali.data.sources import resolve_local_files
from tali.errors import TaliConfigError, TaliSourceError

TEXT_ONLY = TaliConfig(modalities=("youtube_title_text",))


@pytest.fixture()
def source(sample_root, tmp_path):
    """A private copy of the sample dataset (tests here try to destroy it)."""
    root = tmp_path / "src"
    shutil.copytree(sample_root, root)
    return root


def _digest(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["same", "inside", "contains", "data dir"])
def test_an_output_overlapping_its_source_is_refused_and_nothing_is_deleted(source, where, capsys):
    out = {
        "same": source,
        "inside": source / "clean",
        "contains": source.parent,
        "data dir": source / "data",
    }[where]
    before = _digest(source)
    code = main(["filter", str(source), "--split", "train", "--out", str(out), "--overwrite"])
    assert code == 1
    assert "write the new split somewhere else" in capsys.readouterr().err
    assert _digest(source) == before
    assert len(TaliDataset(source, split="train", config=TEXT_ONLY)) == 16


def test_readers_refuse_a_split_with_missing_or_mixed_shards(source):
    data = source / "data"
    (data / "train-00001-of-00002.parquet").unlink()
    with pytest.raises(
        TaliSourceError,
        match=r"split train is incomplete: 1 of 2 shards missing "
        r"\(train-00001-of-00002.parquet\)",
    ):
        TaliDataset(source, split="train", config=TEXT_ONLY)
    shutil.copy(data / "val-00000-of-00001.parquet", data / "train-00000-of-00003.parquet")
    with pytest.raises(TaliSourceError, match="train shards from different writes are mixed"):
        resolve_local_files(source, "train")
    with pytest.raises(TaliSourceError, match="incomplete"):
        resolve_local_files(source)  # every split
    # hidden leftovers are never shards; other splits are unaffected
    (data / ".staging-x").mkdir()
    shutil.copy(data / "val-00000-of-00001.parquet", data / ".staging-x" / "val-00000-of-00001.parquet")
    assert [Path(f).name for f in resolve_local_files(source, "val")] == ["val-00000-of-00001.parquet"]


def _filter_cmd(source: Path, out: Path, where: str, overwrite: bool) -> list[str]:
    cmd = [sys.executable, "-m", "tali.cli.main", "filter", str(source), "--split", "train"]
    cmd += ["--where", where, "--out", str(out), "--rows-per-shard", "1"]
    return cmd + (["--overwrite"] if overwrite else [])


def _state(out: Path) -> int | None:
    """Rows of the published train split (None: no split); a partial split must raise."""
    try:
        return len(TaliDataset(out, split="train", config=TEXT_ONLY))
    except TaliSourceError as exc:
        if "no parquet shards" in str(exc) or "no such file" in str(exc):
            return None
        raise


def _staged(out: Path) -> int:
    count = 0
    for staging in out.glob(".data.staging-*"):
        try:
            count += sum(1 for p in staging.iterdir() if p.name.startswith("train-"))
        except FileNotFoundError:  # published (renamed) while we looked
            pass
    return count


def test_kill_9_during_filter_out_never_leaves_a_partial_split(source, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    assert main(_filter_cmd(source, out, "item_idx < 4", False)[3:]) == 0
    assert _state(out) == 4
    outcomes = []
    for k, kill_at in enumerate((2, 7, 13)):
        proc = subprocess.Popen(
            _filter_cmd(source, out, "item_idx >= 2", True), env=env, stdout=subprocess.DEVNULL
        )
        killed_mid_write = False
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if _staged(out) >= kill_at:
                os.kill(proc.pid, signal.SIGKILL)
                killed_mid_write = True
                break
        proc.wait(30)
        rows = _state(out)
        # old split (4 rows, or the new one from an earlier finished run) or the whole new one (14 rows)
        assert rows in (4, 14), (k, rows)
        outcomes.append((killed_mid_write, rows))
        if k == 0:
            assert pq.read_table(resolve_local_files(out, "train"), columns=["item_idx"]).column(
                0
            ).to_pylist() in (
                [0, 1, 2, 3],
                list(range(2, 16)),
            )
    assert any(killed for killed, _ in outcomes), outcomes  # at least one kill landed mid-write
    # the next write clears what killed writers left and publishes the whole split
    assert main(_filter_cmd(source, out, "item_idx >= 2", True)[3:]) == 0
    assert _state(out) == 14 and not list(out.glob(".data.*-*"))


def test_a_new_split_keeps_the_other_splits_of_the_output(source, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)  # relative paths, as typed in a shell
    assert main(["filter", "src", "--split", "val", "--where", "row >= 0", "--out", "out"]) == 0
    val = (out / "data" / "val-00000-of-00001.parquet").read_bytes()
    assert main(["filter", str(source), "--split", "train", "--where", "row < 2", "--out", str(out)]) == 0
    assert (out / "data" / "val-00000-of-00001.parquet").read_bytes() == val
    assert len(TaliDataset(out, split="train", config=TEXT_ONLY)) == 4
    with pytest.raises(TaliConfigError, match="lies inside the source"):
        from tali.quality import select

        select(source, split="val").write_shards(source / "data" / "more")
