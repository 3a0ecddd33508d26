"""`tali demo` checks what it streamed against the sample dataset's ground truth."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tali.cli.main import main


def _demo(source: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["demo", "--epochs", "1", "--workers", "0", "--source", str(source)])
    return code, " ".join(capsys.readouterr().out.split())


def test_demo_prints_that_every_streamed_batch_matches_its_window(
    sample_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _demo(sample_root, capsys)
    assert code == 0, out
    found = re.search(
        r"aligned, checked against the sample's ground truth: (\d+)/(\d+) frames .* (\d+)/(\d+) audio chunks "
        r".* (\d+)/(\d+) subtitle texts",
        out,
    )
    assert found, out
    frames, frames_all, tones, tones_all, subs, subs_all = map(int, found.groups())
    assert frames == frames_all == 16 * 8  # 16 train rows, 8 frames each
    assert tones == tones_all > 16  # several 0.25 s chunks per 3 s window
    assert subs == subs_all == 16


def test_demo_says_not_aligned_when_the_truth_disagrees(
    sample_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").symlink_to(sample_root / "data")
    truth = json.loads((sample_root / "truth.json").read_text())
    for facts in truth["rows"].values():
        facts["start_second"] += 1  # every subtitle line one second off
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    code, out = _demo(tmp_path, capsys)
    assert code == 1
    assert "NOT aligned" in out and "first mismatch: subtitles" in out
    found = re.search(r"(\d+)/16 subtitle texts", out)
    assert found and int(found.group(1)) < 16  # only rows without subtitles still agree
