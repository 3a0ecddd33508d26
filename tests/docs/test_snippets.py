"""Every ```python block of README.md and docs/**/*.md runs as written on the sample data
(see snippets.py for the convention). Blocks that use the Hub talk to the loopback Hub
(tests/loading/hub_server.py) through HF_ENDPOINT; nothing leaves the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.docs.snippets import blocks, stray_markers
from tests.sample_cache import cache_with_sample

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
WITH_CODE = [p for p in DOCS if any(b.skip_reason is None for b in blocks(p))]


def _id(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_markers_give_a_reason_and_sit_on_a_python_block():
    for path in DOCS:
        assert not stray_markers(path), f"{_id(path)}: not-run marker without a python block below it"
        for block in blocks(path):
            assert block.skip_reason is None or block.skip_reason.strip(), (
                f"{_id(path)}:{block.line}: a not-run marker needs a reason"
            )


def test_the_readme_is_covered():
    assert REPO / "README.md" in WITH_CODE  # the discovery itself can fail


@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_CODE, ids=_id)
def test_doc_snippets_run(path, sample_root, tmp_path):
    from tests.loading.hub_server import HubServer

    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO), env.get("PYTHONPATH", "")]),
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        MPLBACKEND="Agg",
    )
    # A cache of its own: a doc may write beside the sample's shards (BATCH.md's durations
    # index), which neither the docs after it nor this doc's loopback Hub listing may see.
    env["TALI_CACHE_DIR"] = str(cache_with_sample(tmp_path / "cache", sample_root))
    work = tmp_path / "cwd"
    work.mkdir()
    with HubServer(sample_root) as hub:
        env["HF_ENDPOINT"] = hub.endpoint
        done = subprocess.run(
            [sys.executable, str(REPO / "tests" / "docs" / "snippets.py"), str(path)],
            cwd=work, env=env, capture_output=True, text=True, timeout=540, check=False,
        )  # fmt: skip
    assert done.returncode == 0, f"{_id(path)}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    expected = sum(b.skip_reason is None for b in blocks(path))
    assert f"ran {expected} blocks" in done.stdout
