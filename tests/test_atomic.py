"""publish_dir and exclusive under real concurrent processes: a reader never sees part of a
republished dataset (the `sample-data --force` path), and lock holders take turns."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tali.atomic import exclusive, publish_dir, publishing, staging_dir
from tali.data.sources import resolve_local_files
from tali.errors import TaliSourceError


def _republish(target: str, rounds: int) -> None:
    for generation in range(1, rounds + 1):
        staging = staging_dir(target)
        (staging / "data").mkdir()
        for i in range(4):
            table = pa.table({"generation": [generation] * 3})
            pq.write_table(table, staging / "data" / f"train-{i:05d}-of-00004.parquet")
        publish_dir(staging, target)


def test_a_reader_sees_all_four_shards_of_one_generation_or_none(tmp_path):
    target = tmp_path / "sample"
    _republish(str(target), 1)
    ctx = multiprocessing.get_context("spawn")
    writer = ctx.Process(target=_republish, args=(str(target), 60))
    writer.start()
    seen, absent, vanished = set(), 0, 0
    try:
        while writer.is_alive() or not seen:
            try:
                files = resolve_local_files(target, "train")
            except TaliSourceError as exc:
                # A reader already inside the old tree when it is deleted after the exchange sees
                # it shrink: a typed refusal ("incomplete", "no parquet shards"), never a short split.
                assert "incomplete" in str(exc) or "no parquet shards" in str(exc), exc
                absent += 1
                continue
            assert [Path(f).name for f in files] == [f"train-{i:05d}-of-00004.parquet" for i in range(4)]
            # A reader that pins the directory reads one generation, or finds its files gone.
            try:
                dir_fd = os.open(target / "data", os.O_RDONLY)
            except FileNotFoundError:
                absent += 1
                continue
            try:
                generations = set()
                for name in sorted(os.listdir(dir_fd)):
                    with os.fdopen(os.open(name, os.O_RDONLY, dir_fd=dir_fd), "rb") as handle:
                        generations |= set(pq.read_table(handle).column(0).to_pylist())
            except FileNotFoundError:
                vanished += 1  # the old tree was removed after the exchange; the next look sees the new one
                continue
            finally:
                os.close(dir_fd)
            assert len(generations) == 1, generations
            seen |= generations
    finally:
        writer.join(60)
    assert writer.exitcode == 0 and len(seen) > 1
    assert absent <= len(seen)  # at most a rare refusal per republish, and never a partial listing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]  # no staging or old tree left


def _count(path: str, times: int) -> None:
    for _ in range(times):
        with exclusive(path):
            counter = Path(path)
            value = int(counter.read_text()) if counter.exists() else 0
            counter.write_text(str(value + 1))


def test_exclusive_serialises_processes(tmp_path):
    path = str(tmp_path / "counter")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_count, args=(path, 200)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert Path(path).read_text() == "600"


def test_publishing_replaces_on_success_and_leaves_nothing_on_error(tmp_path):
    final, partial = tmp_path / "shard.parquet", tmp_path / ".shard.parquet.partial"
    final.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="mid-write"), publishing(partial, final) as path:
        path.write_bytes(b"half")
        raise RuntimeError("mid-write")
    assert final.read_bytes() == b"old" and not partial.exists()
    with publishing(partial, final) as path:
        path.write_bytes(b"new")
    assert final.read_bytes() == b"new" and not partial.exists()
