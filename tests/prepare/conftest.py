"""A prepared copy of the sample dataset (built once per session) and its ground truth.

The ``rows`` and ``truth`` fixtures here override the top-level ones, so the
alignment tests imported into this directory run on the prepared copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from tali import sample_data
from tali.prepare import PrepareSettings, output_size, prepare
from tali.sample_data.realworld import REALWORLD_VARIANTS

SETTINGS = PrepareSettings()


@pytest.fixture(scope="session")
def original_root() -> Path:
    return sample_data.build()


@pytest.fixture(scope="session")
def prepared_root(original_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The train split (16 rows, every clip variant but the last three) keeps the build short.
    return _prepared(original_root, tmp_path_factory.mktemp("prepared"), "train", 16)


def _prepared(source: Path, out: Path, split: str, rows: int) -> Path:
    report = prepare(source, out, split=split, settings=SETTINGS, workers=2)
    assert report.ok and report.written == rows, report.summary()
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


def _rows(root: Path, split: str = "train") -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for path in sorted((root / "data").glob(f"{split}-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            out[row["item_idx"]] = row
    return out


@pytest.fixture(scope="session")
def prepared_real_root(original_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``realworld`` split (one row per ``REALWORLD_VARIANTS`` class) prepared once."""
    rows = len(REALWORLD_VARIANTS)
    return _prepared(original_root, tmp_path_factory.mktemp("prepared-realworld"), "realworld", rows)


@pytest.fixture(scope="session")
def real_pairs(original_root: Path, prepared_real_root: Path) -> dict[int, tuple[dict, dict]]:
    """item_idx -> (original row, prepared row) of the realworld split."""
    original = _rows(original_root, "realworld")
    prepared = _rows(prepared_real_root, "realworld")
    assert sorted(original) == sorted(prepared)
    return {i: (original[i], prepared[i]) for i in original}


@pytest.fixture(scope="session")
def real_truth(original_root: Path) -> dict[int, dict[str, Any]]:
    """The realworld clips' own truth (frame timestamps and codes of the source)."""
    return {i: t for i, t in sample_data.load_truth(original_root).items() if t.get("realworld")}


def assert_same_window(
    a: dict[str, Any], b: dict[str, Any], label: object, *, same_frames: bool = True
) -> None:
    """Prepared sample ``b`` against original ``a`` (same row, key and config): the same
    window and frame times, pixels within 4 levels on average per frame (p99 under 64:
    the code grid's sharp edges move by a fraction of a pixel after two rescales), and
    the audio in step (its best alignment within 1 ms, 16 samples at 16 kHz, against a
    33 ms frame; correlation there > 0.9). ``same_frames=False`` (a clip the fps cap
    thinned: the window's frames are picked among fewer) checks only that ``b``'s frame
    times are among the source's frame times in the window."""
    assert a["window"] == b["window"], label
    va, vb = a["youtube_content_video"], b["youtube_content_video"]
    if same_frames:
        assert torch.equal(va["pts_seconds"], vb["pts_seconds"]), label
        assert torch.equal(va["mask"], vb["mask"]), label
        diff = (va["frames"].int() - vb["frames"].int()).abs().float()
        assert diff.mean(dim=(1, 2, 3)).max() <= 4.0, label
        assert float(diff.flatten().quantile(0.99)) <= 64, label
    if "youtube_content_audio" not in a:
        return
    wa, wb = a["youtube_content_audio"]["waveform"].numpy(), b["youtube_content_audio"]["waveform"].numpy()
    assert a["youtube_content_audio"]["valid_samples"] == b["youtube_content_audio"]["valid_samples"], label
    if float(np.abs(wa).max()) == 0:
        assert float(np.abs(wb).max()) < 1e-3, label  # silent stays silent
        return
    # Placed by the same timestamps: the best alignment is zero lag (a fragmented mp4's
    # audio was 694 samples early when prepare counted samples), correlation there > 0.9.
    lags = range(-32, 33)
    corr = [np.dot(wa[32:-32], np.roll(wb, lag)[32:-32]) for lag in lags]
    best = list(lags)[int(np.argmax(corr))]
    assert best == 0, f"{label}: audio shifted by {best} samples"
    assert np.corrcoef(wa[32:-32], wb[32:-32])[0, 1] > 0.9, label


@pytest.fixture(scope="session")
def same_window():
    """:func:`assert_same_window`, for the test modules of this directory."""
    return assert_same_window
