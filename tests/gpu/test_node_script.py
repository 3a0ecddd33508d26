"""The GPU node's one command, run tiny on the CPU: it must not rot before a GPU session runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_run_node_smoke_reports_every_part(tmp_path):
    out = tmp_path / "node.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    script = REPO / "benchmarks" / "node" / "run_node.py"
    cmd = [sys.executable, str(script), "--smoke", "--device", "cpu", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=540, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert json.loads(proc.stdout) == result
    parts = result["parts"]
    assert set(parts) == {"setup", "gpu_tests", "loader", "train", "hwdecode"}
    failed = {name: part.get("error") for name, part in parts.items() if not part["ok"]}
    assert not failed, failed
    assert result["machine"]["device"] == "cpu" and result["smoke"] is True

    assert parts["setup"]["prepare_s"] > 0 and parts["setup"]["rows"] >= 12

    tests = parts["gpu_tests"]
    assert tests["returncode"] == 0 and tests["counts"]["passed"] >= 5
    assert tests["counts"]["failure"] == tests["counts"]["error"] == 0
    for name, outcome in tests["tests"].items():
        if "device=cuda" in name and not torch.cuda.is_available():
            assert outcome == "skipped: no CUDA device: run benchmarks/node/run_node.py on a GPU machine"
        else:
            assert outcome == "passed", (name, outcome)

    loader = parts["loader"]
    assert set(loader["cases"]) == {"default/prepared", "av/prepared", "default/original", "av/original"}
    for key, cases in loader["cases"].items():
        assert [c["workers"] for c in cases] == [1, 2], key
        for case in cases:
            assert "skipped" not in case, (key, case)
            assert case["samples"] == case["workers"] * 2 * 2  # batches_per_worker x batch_size
            assert case["samples_per_second"] > 0 and 0 < case["cpu_s_per_sample"] < 30
            assert 50 < case["peak_rss_mib_per_worker_max"] < 4096
            assert 0 < case["uss_mib_per_worker_max"] <= case["peak_rss_mib_per_worker_max"]
            assert case["scaling_efficiency"] > 0
        assert cases[0]["scaling_efficiency"] == 1.0
    assert loader["goal_prepared_default_8_workers"]["target"] == 0.8

    train = parts["train"]
    assert train["shapes"]["youtube_content_video"]["pixel_values"] == [2, 2, 3, 64, 64]
    assert train["shapes"]["youtube_content_audio"]["input_features"] == [2, 80, 100]
    assert train["synthetic_ms_per_step"] > 0
    measured = [r for r in train["loader"] if "ms_per_step" in r]
    assert measured and measured[0]["workers"] == 0
    assert all(r["ms_per_step"] > 0 and r["ratio_to_synthetic"] > 0 for r in measured)
    if train["fewest_workers_within_10_percent"] is not None:
        assert measured[-1]["ratio_to_synthetic"] <= 1.10

    hw = parts["hwdecode"]
    assert isinstance(hw["hwdevices_available"], list)
    if hw["available"]:
        assert len(hw["clips"]) == 2 and hw["clips_decoded_on_gpu"] >= 0
    else:
        assert hw["error"]  # what the machine said, e.g. no CUDA device to open


def test_hwdecode_comparison_runs_without_a_gpu(sample_root):
    """The node's NVDEC comparison, with the CPU decoder on both sides: same frames, no difference."""
    from benchmarks.node.run_node import clips_of, part_hwdecode

    from tali.data.sources import resolve_local_files

    clips = clips_of([Path(f) for f in resolve_local_files(sample_root, "train")], 2)
    out = part_hwdecode(clips, deadline=float("inf"), make_accel=lambda: None)
    assert out["available"] is True and out["clips_decoded_on_gpu"] == 2
    assert out["same_frame_counts"] is True
    for clip in out["clips"]:
        assert clip["frames_cpu"] == clip["frames_gpu"] > 10
        assert clip["max_abs_diff_255"] == 0 and clip["native_format_gpu"] == "yuv420p"
