"""`make test` says what it costs before it is run, and its long steps say what they do (issue 25.A9)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_says_how_long_make_test_takes_and_that_it_uses_apt():
    readme = (ROOT / "README.md").read_text()
    paragraph = readme[readme.index("`make test` takes time") :].split("\n\n")[0]
    assert "apt-get" in paragraph and "chromium" in paragraph and "libavcodec59" in paragraph
    assert re.search(r"\d+-\d+\s+minutes", paragraph)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_every_long_setup_step_is_announced(tmp_path):
    """`make -n` lists the recipe: each pip install and apt script comes after an ==> line."""
    plan = subprocess.run(
        ["make", "-n", "-B", "test", f"VENV={tmp_path / 'venv'}", "PYTHON=python3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()

    def is_long(line: str) -> bool:
        return " -m pip install" in line or line.startswith("scripts/install-") or " -m pytest" in line

    long_steps = [i for i, line in enumerate(plan) if is_long(line)]
    assert len(long_steps) >= 5
    for i in long_steps:
        before = [line for line in plan[:i] if line.startswith('echo "==>')]
        assert before, plan[i]
    announced = [line for line in plan if line.startswith('echo "==>')]
    assert len(announced) >= 5
    for script in ("install-chromium", "install-ffmpeg-libs"):
        text = (ROOT / "scripts" / script).read_text()
        assert 'echo "apt-get: installing' in text and "installed in $((SECONDS - started)) s" in text
