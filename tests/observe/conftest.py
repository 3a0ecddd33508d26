"""Fixtures for the observability tests: the ground-truth sample dataset and a
copy of its val split with two rows broken on purpose (a truncated mp4, an
image that is not an image), so error reporting is checked against known rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tali import AudioConfig, TaliConfig


@pytest.fixture(scope="session")
def root(sample_root: Path) -> str:
    """The shared ``sample_root`` (tests/conftest.py) as the string a CLI receives."""
    return str(sample_root)


@pytest.fixture(scope="session")
def config() -> TaliConfig:
    # The sample dataset has a clip without audio on purpose: zeros, flagged missing.
    return TaliConfig(audio=AudioConfig(on_missing="zeros"), seed=3)


@pytest.fixture(scope="session")
def broken_items() -> dict[int, tuple[str, str]]:
    """The val rows broken in ``broken_root``: item_idx -> (column, expected error class)."""
    return {17: ("youtube_video_content", "TaliDecodeError"), 18: ("image", "TaliImageError")}


@pytest.fixture(scope="session")
def broken_root(root: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    src = Path(root) / "data" / "val-00000-of-00001.parquet"
    table = pq.read_table(src)
    items = table.column("item_idx").to_pylist()
    video = table.column("youtube_video_content").to_pylist()
    image = table.column("image").to_pylist()
    row_video = items.index(17)
    video[row_video] = video[row_video][:4000]  # truncated mp4: the moov box is gone
    row_image = items.index(18)
    image[row_image] = {"bytes": b"this is not an image", "path": None}
    table = table.set_column(
        table.schema.get_field_index("youtube_video_content"),
        "youtube_video_content",
        pa.array(video, type=table.schema.field("youtube_video_content").type),
    )
    table = table.set_column(
        table.schema.get_field_index("image"), "image", pa.array(image, type=table.schema.field("image").type)
    )
    out = tmp_path_factory.mktemp("broken") / "data"
    out.mkdir()
    pq.write_table(table, out / "val-00000-of-00001.parquet", row_group_size=3)
    return str(out.parent)
