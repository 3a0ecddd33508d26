"""The command line, run as a user runs it: a subprocess with its exit status."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _tali(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tali.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.slow
def test_demo_streams_every_submodality_and_reports_speed(sample_root):
    done = _tali("demo", "--epochs", "1", "--source", str(sample_root))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for key in (
        "youtube_content_video.frames",
        "youtube_content_audio.waveform",
        "wikipedia_caption_image.pixels",
        "youtube_subtitle_text.text",
        "wikipedia_caption_text.language",
    ):
        assert key in out
    assert "[4, 8, 3, 224, 224]" in out and "samples/s" in out


def test_sample_data_writes_to_a_path(sample_root, tmp_path):
    # Reuse the cached build: copying is what a second `sample-data` to the cache does too.
    done = _tali("sample-data", env={"TALI_CACHE_DIR": str(sample_root.parent)})
    assert done.returncode == 0, done.stderr
    assert "39 rows" in done.stdout and str(sample_root) in done.stdout  # 24 + the 15 real-world clips


def test_errors_exit_non_zero_with_a_message(tmp_path):
    done = _tali("demo", "--source", str(tmp_path / "missing"))
    assert done.returncode == 1
    assert "error: no such file or directory" in done.stderr
