"""Two real ranks (torchrun, gloo, CPU) x 2 DataLoader workers each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

import tali


@pytest.mark.slow
def test_torchrun_two_ranks_two_workers_cover_the_split_once(sample_root, tmp_path):
    script = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(sample_root),
            str(tmp_path),
        ],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2]  # from the process group, not arguments
    per_rank = [[k for b in r["batches"] for k in b] for r in ranks]
    assert sorted(per_rank[0] + per_rank[1]) == list(range(16))  # whole split, no duplicates
    assert [len(k) for k in per_rank] == [r["len"] for r in ranks] == [8, 8]

    # Each rank's Prometheus file carries its rank label and its own counts; the
    # snapshot merged over ranks totals both.
    for r in range(2):
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families((tmp_path / f"rank{r}.prom").read_text())
            for s in family.samples
        }
        assert all(dict(labels).get("rank") == str(r) for _, labels in samples)
        assert samples[("tali_samples_total", (("rank", str(r)),))] == 8
        assert samples[("tali_stage_calls_total", (("rank", str(r)), ("stage", "read")))] == 8
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["samples"] == 16 and merged["ranks"] == 2
    assert merged["stages"]["read"]["calls"] == 16

    # The gathered checkpoint (taken after each rank's first batch) knows both ranks' progress:
    # resumed by one process, it delivers exactly what neither rank had received by then.
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    first = ranks[0]["batches"][0] + ranks[1]["batches"][0]
    config = tali.TaliConfig(modalities=("youtube_subtitle_text", "wikipedia_caption_text"))
    resumed = tali.load(sample_root, split="train", config=config, buffer_size=4)
    resumed.load_state_dict(state)
    rest = [s["key"] for s in resumed]
    assert sorted(first + rest) == list(range(16))
