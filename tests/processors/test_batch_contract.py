"""docs/BATCH.md is the batch: every documented key exists with its shape and dtype, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import tali
from tali.processors import default_processors

DOC = Path(__file__).resolve().parents[2] / "docs" / "BATCH.md"
BATCH_SIZE = 3
FIXED = {"B": BATCH_SIZE, "N": tali.VideoConfig().num_frames}


def _table() -> list[tuple[str, list[str], str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        key, shape, dtype = cells[0].strip("`"), cells[1].strip("`"), cells[2]
        rows.append((key, [d.strip() for d in shape.strip("[]").split(",")], dtype))
    return rows


def _flatten(batch, prefix=""):
    for name, value in batch.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            yield from _flatten(value, key + ".")
        else:
            yield key, value


@pytest.fixture(scope="module")
def batch(sample_root, asset_dirs):
    procs = default_processors(clip=str(asset_dirs["clip"]), whisper=str(asset_dirs["whisper"]))
    ds = tali.TaliDataset(sample_root, split="train", processors=procs)
    loader = tali.make_loader(ds, batch_size=BATCH_SIZE, num_workers=0, collate_fn=procs.collate)
    return dict(_flatten(next(iter(loader))))


def test_table_lists_exactly_the_batch_keys(batch):
    documented = [key for key, _, _ in _table()]
    assert len(documented) == len(set(documented)) > 20
    assert sorted(documented) == sorted(batch)


def test_every_key_has_its_documented_shape_and_dtype(batch):
    lengths: dict[str, int] = {}
    for key, dims, dtype in _table():
        value = batch[key]
        if dtype.startswith("list"):
            assert isinstance(value, list) and len(value) == FIXED["B"], key
            inner = dtype.removeprefix("list[").removesuffix("]")
            assert all(type(v).__name__ == inner for v in value), key
            continue
        assert isinstance(value, torch.Tensor), key
        assert str(value.dtype) == f"torch.{dtype}", (key, value.dtype)
        assert value.ndim == len(dims), (key, list(value.shape), dims)
        for size, dim in zip(value.shape, dims, strict=True):
            if dim.isdigit():
                assert size == int(dim), (key, list(value.shape), dims)
            elif dim == "L":
                # One L per text sub-modality, shared by its ids and mask, at most max_length.
                owner = key.split(".")[0]
                assert lengths.setdefault(owner, size) == size and 1 <= size <= 77, (key, size)
            else:
                assert size == FIXED[dim], (key, list(value.shape), dims)
