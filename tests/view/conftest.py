"""Shared fixtures for the viewer: one server (a uvicorn thread on a free loopback port) and
one headless Chromium per session, shared by every browser test (``xdist_group("browser")``
keeps them on one worker)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.extras import need

from tali._optional import available, install_hint

need(
    available("starlette") and available("uvicorn"),
    f"the viewer's tests need the view extra: {install_hint('view')} (or make setup-dev)",
)

from tali.quality.metrics import MetricsOptions, compute_metrics
from tali.view import Catalog, ViewerServer

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Lets a test start playback without a click (the video is muted anyway).
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="session")
def val_metrics(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real metrics of the 4 val rows (every clip decoded once)."""
    out = tmp_path_factory.mktemp("view-metrics") / "val-metrics.parquet"
    compute_metrics(sample_root, split="val", out=out, workers=1, options=MetricsOptions(similarity=False))
    return out


@pytest.fixture(scope="session")
def broken_root(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three train rows: row 0's clip is not an mp4, row 1's subtitles are not YAML, row 2 is
    good; with the report `tali validate` writes for them."""
    from tali.quality import validate

    root = tmp_path_factory.mktemp("broken")
    table = pq.read_table(sample_root / "data" / "train-00000-of-00002.parquet").slice(0, 3)
    videos = table.column("youtube_video_content").to_pylist()
    subtitles = table.column("youtube_subtitle_text").to_pylist()
    videos[0], subtitles[1] = b"not an mp4 at all", "0.5: [unclosed"
    for name, values, kind in (
        ("youtube_video_content", videos, pa.binary()),
        ("youtube_subtitle_text", subtitles, pa.string()),
    ):
        k = table.schema.get_field_index(name)
        table = table.set_column(k, table.schema.field(k), pa.array(values, kind))
    (root / "data").mkdir()
    pq.write_table(table, root / "data" / "train-00000-of-00001.parquet")
    report = tmp_path_factory.mktemp("reports") / "validation.json"  # apart from the source
    validate(root, split="train", checks=["clip", "subtitles"], report=report)
    return root, report


@pytest.fixture(scope="session")
def catalog(sample_root: Path) -> Catalog:
    return Catalog([sample_root])


@pytest.fixture(scope="session")
def server(catalog: Catalog, val_metrics: Path) -> Iterator[ViewerServer]:
    with ViewerServer(catalog, port=0, metrics=val_metrics) as running:
        yield running
    assert not running.server.started or running.server.should_exit


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium")
    missing = [
        what
        for what, ok in (
            ("the playwright package (pip install playwright)", available("playwright")),
            ("Debian's chromium (apt-get install chromium)", executable is not None),
        )
        if not ok
    ]
    need(not missing, f"browser tests need {' and '.join(missing)}; make setup-dev installs both")
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp: Playwright polls wait_for_function predicates with eval, which the CSP forbids.
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"the page raised: {errors}"
