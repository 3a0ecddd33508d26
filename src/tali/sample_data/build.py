"""Build the sample dataset once into a cache directory and reuse it.

Concurrent builders (pytest-xdist, DataLoader workers, two shells) serialise
on a lock file; the dataset appears atomically, so a reader never sees half
of it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tali.sample_data.generate import GENERATOR_VERSION, write_dataset

__all__ = ["build", "default_path", "load_truth"]


def default_path(seed: int = 0) -> Path:
    """``$TALI_CACHE_DIR`` (else ``$XDG_CACHE_HOME/tali``, else ``~/.cache/tali``) / sample-v<N>-seed<S>."""
    root = os.environ.get("TALI_CACHE_DIR")
    if root is None:
        root = str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tali")
    return Path(root) / f"sample-v{GENERATOR_VERSION}-seed{seed}"


def _is_current(path: Path, seed: int, with_thumbnail: bool) -> bool:
    try:
        truth = json.loads((path / "truth.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        truth.get("generator_version") == GENERATOR_VERSION
        and truth.get("seed") == seed
        and truth.get("with_thumbnail", False) == with_thumbnail
    )


def build(
    path: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    force: bool = False,
    with_thumbnail: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Return the sample dataset at ``path``, generating it first if absent or stale.

    ``progress(rows_done, rows_total)`` reports a build (not called when cached)."""
    target = Path(path) if path is not None else default_path(seed)
    if not force and _is_current(target, seed, with_thumbnail):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if force or not _is_current(target, seed, with_thumbnail):
            write_dataset(target, seed=seed, with_thumbnail=with_thumbnail, progress=progress)
    return target


def load_truth(path: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """The generator's record of every row, keyed by ``item_idx``."""
    truth = json.loads((Path(path) / "truth.json").read_text())
    return {int(k): v for k, v in truth["rows"].items()}
