"""Fixtures for the loading tests: the ground-truth sample dataset, a copy with
known bad rows, and a loopback Hub serving the sample dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tali import TaliConfig
from tali.data.sources import resolve_local_files

#: Cheap to produce (no media decoding) yet keyed by the per-sample seed:
#: the subtitle window and the Wikipedia language are random choices.
TEXT = TaliConfig(modalities=("youtube_subtitle_text", "wikipedia_caption_text", "youtube_title_text"))


@pytest.fixture(scope="session")
def train_files(sample_root) -> list[str]:
    return resolve_local_files(sample_root, "train")


@pytest.fixture(scope="session")
def bad_root(tmp_path_factory, sample_root) -> Path:
    """The train split with unparseable subtitles in global rows 4 and 15 (the last row)."""
    root = tmp_path_factory.mktemp("bad") / "ds"
    (root / "data").mkdir(parents=True)
    first = 0
    for path in resolve_local_files(sample_root, "train"):
        table = pq.read_table(path)
        column = table.column("youtube_subtitle_text").to_pylist()
        for i in range(len(column)):
            if first + i in (4, 15):
                column[i] = "[this is: not, a mapping"
        i = table.schema.get_field_index("youtube_subtitle_text")
        table = table.set_column(i, table.schema.field(i), pa.array(column, pa.string()))
        pq.write_table(table, root / "data" / Path(path).name, row_group_size=3)
        first += table.num_rows
    return root


@pytest.fixture()
def hub(sample_root):
    from .hub_server import HubServer

    with HubServer(sample_root) as server:
        yield server


@pytest.fixture()
def copy_of(tmp_path):
    def copy(src: Path) -> Path:
        dst = tmp_path / "copy"
        shutil.copytree(src, dst)
        return dst

    return copy
