"""A prepared copy of the sample dataset (built once per session) and its ground truth.

The ``rows`` and ``truth`` fixtures here override the top-level ones, so the
alignment tests imported into this directory run on the prepared copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tali import sample_data
from tali.prepare import PrepareSettings, output_size, prepare

SETTINGS = PrepareSettings()


@pytest.fixture(scope="session")
def original_root() -> Path:
    return sample_data.build()


@pytest.fixture(scope="session")
def prepared_root(original_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    # The train split (16 rows, every clip variant but the last three) keeps the build short.
    report = prepare(original_root, out, split="train", settings=SETTINGS, workers=2)
    assert report.ok and report.written == 16, report.summary()
    return out


@pytest.fixture(scope="session")
def original_rows(original_root: Path) -> dict[int, dict[str, Any]]:
    return _rows(original_root)


@pytest.fixture(scope="session")
def rows(prepared_root: Path) -> dict[int, dict[str, Any]]:
    return _rows(prepared_root)


@pytest.fixture(scope="session")
def truth(original_root: Path) -> dict[int, dict[str, Any]]:
    """The generator's truth, changed only where prepare changes the clip: its size,
    its keyframe interval (``SETTINGS.keyframe_seconds``) and a frame-rate cap."""
    out = {}
    for item_idx, t in sample_data.load_truth(original_root).items():
        width, height = output_size(t["width"], t["height"], SETTINGS.short_side)
        out[item_idx] = dict(
            t,
            width=width,
            height=height,
            fps=min(t["fps"], SETTINGS.max_fps),
            gop_seconds=SETTINGS.keyframe_seconds,
        )
    return out


def _rows(root: Path) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for path in sorted((root / "data").glob("train-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            out[row["item_idx"]] = row
    return out
