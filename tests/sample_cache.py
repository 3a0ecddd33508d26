"""A cache of its own holding a copy of the sample (tests/conftest.py, the doc snippets)."""

from __future__ import annotations

import shutil
from pathlib import Path


def cache_with_sample(cache: Path, sample: Path) -> Path:
    """``cache`` holding a copy of ``sample`` where ``sample_data.build()`` looks for it
    (set ``$TALI_CACHE_DIR`` to it): writes beside that copy's shards stay in it."""
    shutil.copytree(sample, cache / sample.name)
    return cache
