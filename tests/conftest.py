"""Shared fixtures: the ground-truth sample dataset, built once per machine and reused.

Each test process works in a cache of its own (``$TALI_CACHE_DIR``, removed at its end)
holding a copy of the machine's sample: a test or doc snippet that writes beside the
sample's shards (``tali durations``, say) cannot change what a test in the other xdist
worker reads, and the user's ``~/.cache/tali/index`` does not grow by each run's
temporary datasets (~200 MB of footers a run before).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from tests.sample_cache import cache_with_sample

from tali import sample_data

_SESSION_CACHE: Path | None = None

try:  # `make test` and CI: the fuzzers draw the same examples every run (a failure reproduces)
    from hypothesis import settings

    settings.register_profile("repeatable", derandomize=True, print_blob=True)
    if os.environ.get("TALI_TESTS_NEED_EXTRAS") or os.environ.get("CI"):
        settings.load_profile("repeatable")
except ImportError:  # a partial install: tests/extras.py names what to install
    pass


def _remove_caches_of_dead_runs() -> None:
    """A worker ended by faulthandler (or killed) leaves its cache behind: remove those whose
    process is gone."""
    for old in Path(tempfile.gettempdir()).glob("tali-tests-*-*"):
        pid = old.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    global _SESSION_CACHE
    machine_sample = sample_data.build()  # the machine's cache: built once, then reused
    if Path("/proc/self").exists():
        _remove_caches_of_dead_runs()
    _SESSION_CACHE = cache_with_sample(
        Path(tempfile.mkdtemp(prefix=f"tali-tests-{os.getpid()}-")), machine_sample
    )
    os.environ["TALI_CACHE_DIR"] = str(_SESSION_CACHE)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def sample_root() -> Path:
    """The sample dataset (cached under $TALI_CACHE_DIR or ~/.cache/tali; a lock serialises builders)."""
    return sample_data.build()


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    stats = {str(p.relative_to(root)): p.stat() for p in root.rglob("*") if p.is_file()}
    return {name: (st.st_size, st.st_mtime_ns) for name, st in stats.items()}


@pytest.fixture(autouse=True)
def _sample_left_as_found(request: pytest.FixtureRequest):
    """A test that writes into the shared sample (and leaves it so) fails: the tests after it,
    in its process, would read another dataset than the ground truth describes."""
    if "sample_root" not in request.fixturenames:
        yield
        return
    root = request.getfixturevalue("sample_root")
    before = _listing(root)
    yield
    after = _listing(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"this test changed the shared sample dataset {root}: {changed}"


@pytest.fixture(scope="session")
def truth(sample_root: Path) -> dict[int, dict[str, Any]]:
    return sample_data.load_truth(sample_root)


@pytest.fixture(scope="session")
def rows(sample_root: Path) -> dict[int, dict[str, Any]]:
    """Every row of the train, val and test splits as Python values, keyed by item_idx
    (the ``realworld`` split's clips have their own fixture, ``real_rows``)."""
    out: dict[int, dict[str, Any]] = {}
    for path in sorted((sample_root / "data").glob("*.parquet")):
        if path.name.startswith("realworld-"):
            continue
        for row in pq.read_table(path).to_pylist():
            out[row["item_idx"]] = row
    return out


@pytest.fixture(scope="session")
def real_rows(sample_root: Path) -> dict[int, dict[str, Any]]:
    """The ``realworld`` split (one row per ``sample_data.REALWORLD_VARIANTS`` clip), by item_idx."""
    out: dict[int, dict[str, Any]] = {}
    for path in sorted((sample_root / "data").glob("realworld-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            out[row["item_idx"]] = row
    return out
