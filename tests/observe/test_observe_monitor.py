"""Monitor: totals across DataLoader workers, resources per worker, errors by class
and row, and the merge across ranks, all checked against the sample truth."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tali import TaliConfig, TaliConfigError, TaliDataset, make_loader
from tali.observe import Monitor, ResourceSampler, merge_snapshots


def test_two_workers_totals_and_resources(root, truth, config):
    ds = TaliDataset(root, split="val", config=config, collect_stats=True)
    monitor = Monitor(interval_seconds=0.05)
    seen = []
    with monitor:
        for batch in monitor.watch(make_loader(ds, batch_size=1, num_workers=2)):
            assert "stats" not in batch  # popped: not a model input
            seen.extend(batch["item_idx"].tolist())
            monitor.sampler.sample()  # the workers are alive now: record them
    snap = monitor.snapshot()
    assert sorted(seen) == [16, 17, 18, 19]
    assert snap.samples == 4 and snap.batches == 4
    assert snap.samples_per_second > 0 and snap.bytes_per_second > 0
    assert snap.bytes_read > sum(truth[i]["clip_bytes"] for i in seen)
    # 3 timed video stages per sample: the packet index, the window's frames, the random frame
    assert snap.stages["read"]["calls"] == 4 and snap.stages["video_decode"]["calls"] == 12
    assert snap.stages["audio_decode"]["calls"] == sum(truth[i]["has_audio"] for i in seen)
    assert snap.stages["collate"]["calls"] == 4
    assert abs(sum(s["share"] for s in snap.stages.values()) - 1) < 1e-9
    assert 0 < snap.loader_wait_seconds <= snap.elapsed_seconds
    assert 0 < snap.first_batch_seconds < snap.elapsed_seconds and snap.first_batch_samples == 1
    assert snap.steady_samples_per_second == pytest.approx(
        3 / (snap.elapsed_seconds - snap.first_batch_seconds)
    )
    # Two worker processes, each with its own pid, RSS and fds, none of them this process.
    assert [w["worker"] for w in snap.workers] == [0, 1]
    assert sum(w["samples"] for w in snap.workers) == 4
    worker_pids = {w["pid"] for w in snap.workers}
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids
    for w in snap.workers:
        assert (
            w["peak_rss_bytes"] > 50 * 2**20
            and w["peak_num_fds"] >= w["num_fds"] > 0
            and w["busy_seconds"] > 0
        )
    roles = {p["pid"]: p["role"] for p in snap.resources["processes"]}
    assert roles[os.getpid()] == "main" and all(roles[pid] == "worker" for pid in worker_pids)
    assert snap.resources["peak_rss_bytes"] >= snap.resources["rss_bytes"] > 0
    assert snap.errors["skipped"] == 0 and snap.errors["read"] == 4
    scalars = snap.scalars()
    assert scalars["tali/stage_ms/video_decode"] > 0 and scalars["tali/samples_per_second"] > 0


def test_skip_policy_reports_errors_by_class_and_row(broken_root, broken_items, config):
    ds = TaliDataset(broken_root, split="val", config=config, collect_stats=True, on_error="skip")
    monitor = Monitor(resources=False)
    for batch in monitor.watch(make_loader(ds, batch_size=2, num_workers=0)):
        assert batch["valid"].all()
    snap = monitor.snapshot()
    # Sample 1 (item 17, bad) moves on to item 18 (bad) and then 19; sample 2 (item 18)
    # moves on to 19 too. Each bad row is recorded once, by the request for its own index.
    assert snap.errors["by_error"] == {"TaliDecodeError": 1, "TaliImageError": 1}
    rows = {r["item_idx"]: r for r in snap.errors["rows"]}
    assert rows.keys() == broken_items.keys()
    for item, (field, error) in broken_items.items():
        assert rows[item]["field"] == field and rows[item]["error"] == error
        assert rows[item]["shard"] == "val-00000-of-00001.parquet" and rows[item]["row"] == item - 16
    assert snap.samples == 4 and snap.errors["skipped"] == 2 and snap.errors["read"] == 6
    # Rows read for skipped attempts are charged to the sample that replaced them; item 18,
    # known bad once sample 1 stepped over it, is not read again for sample 2.
    assert snap.stages["read"]["calls"] == 6
    assert snap.resources == {}


def test_substitute_policy_counts_placeholders(broken_root, config):
    ds = TaliDataset(broken_root, split="val", config=config, collect_stats=True, on_error="substitute")
    monitor = Monitor(resources=False)
    for _ in monitor.watch(make_loader(ds, batch_size=4, num_workers=0)):
        pass
    snap = monitor.snapshot()
    assert snap.errors["substituted"] == 2 and snap.errors["read"] == 4 and snap.samples == 4


def test_monitor_without_stats_still_counts_batches_and_errors(broken_root, config):
    ds = TaliDataset(broken_root, split="val", config=config, on_error="skip")
    monitor = Monitor(resources=False)
    for batch in make_loader(ds, batch_size=4, num_workers=0):
        monitor.update(batch)
    snap = monitor.snapshot()
    assert snap.batches == 1 and snap.samples == 0 and snap.errors["skipped"] == 2


def test_bad_inputs_raise():
    with pytest.raises(TaliConfigError, match="expects a batch dict, got list"):
        Monitor(resources=False).update([1, 2])
    with pytest.raises(TaliConfigError, match="interval_seconds must be > 0, got 0"):
        ResourceSampler(interval_seconds=0)
    with pytest.raises(ValueError, match="no snapshots to merge"):
        merge_snapshots([])


def _rank_main(rank: int, world: int, port: int, root: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        config = TaliConfig(modalities=("youtube_title_text", "wikipedia_caption_image"), seed=0)
        ds = TaliDataset(root, split="val", config=config, collect_stats=True)
        shard = torch.utils.data.Subset(ds, list(range(rank, len(ds), world)))
        monitor = Monitor(resources=False)
        for _ in monitor.watch(make_loader(shard, batch_size=1, num_workers=0)):
            pass
        merged = monitor.all_ranks()
        results[rank] = merged.to_dict()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_ranks_merges_over_gloo(root):
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank_main, args=(2, _free_port(), root, results), nprocs=2, join=True)
        results = dict(results)
    assert results[0]["samples"] == results[1]["samples"] == 4  # every rank sees the job's totals
    merged = results[0]
    assert merged["ranks"] == 2 and merged["samples"] == 4 and merged["batches"] == 4
    assert sorted((w["rank"], w["samples"]) for w in merged["workers"]) == [(0, 2), (1, 2)]
    assert merged["stages"]["image_decode"]["calls"] == 4 and merged["stages"]["collate"]["calls"] == 4
    assert merged["stages"]["video_decode"]["calls"] == 0
