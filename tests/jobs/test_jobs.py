"""The infrastructure floor's job runner: executors by name, the floor importable without Ray,
and one output whichever executor writes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tali
from tali.errors import TaliConfigError
from tali.jobs import Inline, ProcessPool, executor_for


def test_the_floor_never_imports_the_layers_above():
    """``tali.jobs`` and ``tali.sql`` load without Ray, the quality tools or the loaders."""
    code = (
        "import sys, tali.jobs, tali.sql, tali.atomic\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[:2] in (['tali', 'ray'], ['tali', 'quality'], "
        "['tali', 'data'], ['tali', 'pipeline']) or m == 'ray')\n"
        "print(bad)\n"
    )
    root = str(Path(tali.__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": root}, check=True
    )
    assert done.stdout.strip() == "[]"


def test_executors_by_name():
    assert executor_for("inline") == Inline()
    assert executor_for("pool", workers=2) == ProcessPool(2)
    with pytest.raises(TaliConfigError, match=r"no job executor named 'dask'; choose from inline, pool, ray"):
        executor_for("dask")


def test_any_executor_writes_the_streaming_writers_bytes(sample_root, tmp_path):
    """``tali filter --out`` planned per output shard (as Ray runs it) on a process pool equals
    the streaming writer, byte for byte."""
    from tali.quality import select
    from tali.quality.write import planned_copy, write_kept_rows

    result = select(sample_root, split="train", where="item_idx % 3 != 1")
    streamed = result.write_shards(tmp_path / "a", rows_per_shard=4, row_group_size=3)
    pooled = write_kept_rows(
        result,
        tmp_path / "b",
        split="train",
        rows_per_shard=4,
        row_group_size=3,
        overwrite=False,
        copy=planned_copy(ProcessPool(2)),
    )
    assert streamed == pooled and len(streamed.shards) == 3
    for name in streamed.shards:
        assert (tmp_path / "a" / "data" / name).read_bytes() == (tmp_path / "b" / "data" / name).read_bytes()
