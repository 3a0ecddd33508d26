"""The footer cache ($TALI_CACHE_DIR/index) stays under its bound, least recently used first,
and a footer it dropped is read again: the rows are still the right rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tali
from tali.data.footers import TAIL_BYTES, cache_root, local_identity

TEXT = tali.TaliConfig(modalities=("youtube_title_text",))


def _copy(sample_root: Path, root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    for shard in sorted((sample_root / "data").glob("train-*.parquet")):
        shutil.copy(shard, root / "data" / shard.name)
    return root


def _tails_of(root: Path) -> set[str]:
    return {f"{local_identity(str(p)).key()}.tail" for p in (root / "data").glob("*.parquet")}


def _read(root: Path) -> list[int]:
    dataset = tali.TaliDataset(root, split="train", config=TEXT)
    return sorted(dataset[i]["item_idx"] for i in range(len(dataset)))


def test_the_footer_cache_keeps_to_its_bound_least_recently_used_first(
    sample_root, truth, tmp_path, monkeypatch
):
    monkeypatch.setenv("TALI_CACHE_DIR", str(tmp_path / "cache"))
    # Room for the tails of two copies (two shards each) and their page tables, not three.
    limit = 5 * (TAIL_BYTES + 8)
    monkeypatch.setenv("TALI_INDEX_CACHE_BYTES", str(limit))
    a, b, c = (_copy(sample_root, tmp_path / name) for name in "abc")
    want = sorted(i for i, t in truth.items() if t["split"] == "train")

    def held() -> set[str]:
        return {p.name for p in cache_root().iterdir() if not p.name.startswith(".")}

    assert _read(a) == want and _read(b) == want
    assert _tails_of(a) | _tails_of(b) <= held()
    assert _read(a) == want  # a is used again: b is now the least recently used
    assert _read(c) == want
    cached = held()
    assert _tails_of(c) <= cached and _tails_of(a) <= cached
    assert not _tails_of(b) & cached, "the least recently used copy's footers were dropped"
    size = sum((cache_root() / name).stat().st_size for name in cached)
    assert size <= limit
    assert _read(b) == want  # dropped footers are read again
    assert _tails_of(b) <= held()


@pytest.mark.parametrize("value", ["", "not a number", "-5"])
def test_a_bad_bound_falls_back_to_the_default(monkeypatch, value):
    from tali.data.footers import MAX_CACHE_BYTES, max_cache_bytes

    monkeypatch.setenv("TALI_INDEX_CACHE_BYTES", value)
    assert max_cache_bytes() == MAX_CACHE_BYTES
