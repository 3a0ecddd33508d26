"""``tali profile``: stage and function breakdowns from real profilers, the worker
estimate for a target rate, and its error paths."""

from __future__ import annotations

import json

import pytest

from tali import TaliConfig, TaliConfigError, TaliDataset
from tali.cli.main import main
from tali.observe.profile import parse_rate, profile_dataset, usable_cores


@pytest.mark.parametrize(
    ("text", "rate"),
    [("500/s", 500.0), ("500", 500.0), ("30000/min", 500.0), ("7.5 / s", 7.5), ("3600/h", 1.0)],
)
def test_parse_rate(text, rate):
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["fast", "0/s", "-3/s", "500/day", ""])
def test_parse_rate_rejects(text):
    with pytest.raises(TaliConfigError, match="is not a positive rate"):
        parse_rate(text)


def test_cprofile_report_feasible_target(root, truth, config):
    ds = TaliDataset(root, split="val", config=config)
    report = profile_dataset(ds, samples=4, target_per_second=0.5, top=400)
    assert not ds.collect_stats  # restored after the stage pass
    assert report.samples == 4 and report.samples_per_second_one_worker > 0
    # Rows 1, 2, 3, 0 of val (after the warm-up of row 0): every clip has audio.
    assert report.stages["read"]["calls"] == 4 and report.stages["video_decode"]["calls"] == 12
    assert report.stages["audio_decode"]["calls"] == 4 and report.stages["collate"]["calls"] == 4
    assert report.bottleneck == max(report.stages, key=lambda k: report.stages[k]["seconds"])
    where = {f["where"].split(":")[0] for f in report.functions}
    assert "tali/decode/video.py" in where and "tali/transform.py" in where
    called = {f["function"]: f["calls"] for f in report.functions}
    # per sample: the window's packet scan, one decode for frames + random frame, one for the thumbnail
    assert called["decode_frames_at"] == 8 and called["frames_between"] == 8
    assert report.workers_needed == 1 and report.feasible
    assert report.verdict.startswith("yes: 0.5/s needs 1 worker(s)")
    assert json.loads(json.dumps(report.to_dict()))["verdict"] == report.verdict


def test_unreachable_target_names_the_bottleneck(root):
    config = TaliConfig(modalities=("youtube_content_video",), seed=2)
    report = profile_dataset(
        TaliDataset(root, split="val", config=config),
        samples=2,
        target_per_second=1e6,
        profiler="pyinstrument",
    )
    assert report.bottleneck == "video_decode" and report.feasible is False
    assert report.workers_needed > usable_cores()
    assert report.verdict.startswith("no: 1e+06/s needs") and "--num-frames" in report.verdict
    assert "decode_frames_at" in report.tree
    assert any(f["where"].startswith("tali/decode/video.py") for f in report.functions)


def test_verify_runs_real_workers(root):
    config = TaliConfig(modalities=("youtube_title_text", "wikipedia_caption_text"))
    report = profile_dataset(
        TaliDataset(root, split="val", config=config), samples=4, target_per_second=1.0, verify=True
    )
    assert report.verified["workers"] == 1 and report.verified["samples"] > 0
    assert report.verified["samples_per_second"] > 0
    assert "Measured with 1 workers" in report.verdict


def test_profile_arguments_are_checked(root, config):
    ds = TaliDataset(root, split="val", config=config)
    with pytest.raises(TaliConfigError, match="profiler='perf' is not allowed"):
        profile_dataset(ds, profiler="perf")
    with pytest.raises(TaliConfigError, match="samples must be an int >= 1, got 0"):
        profile_dataset(ds, samples=0)
    with pytest.raises(TaliConfigError, match="efficiency must be in"):
        profile_dataset(ds, efficiency=1.5)


def test_cli_profile_json_and_tables(root, capsys):
    args = ["profile", root, "--split", "val", "--samples", "2", "--num-frames", "2", "--size", "112"]
    assert main([*args, "--target", "0.1/s", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["workers_needed"] == 1 and report["feasible"] is True
    assert report["stages"]["video_decode"]["calls"] == 6  # 3 a sample: scan, frames, thumbnail
    assert main([*args, "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "video_decode" in out and "functions by self time (cprofile)" in out
    assert main([*args, "--target", "soon"]) == 1
    assert "target rate 'soon' is not a positive rate" in capsys.readouterr().err
