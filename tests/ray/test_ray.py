"""tali on a real local Ray cluster (2 CPUs, started once for the module): Ray Data reads and
samples, the per-shard jobs with outputs identical to the local run, and a killed worker."""

from __future__ import annotations

import filecmp
import os
import signal
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tests.extras import need

from tali._optional import available, install_hint

need(
    available("ray"), f"the Ray tests need the ray extra: {install_hint('ray')} (make setup-dev installs it)"
)
import ray
from tali import AudioConfig, TaliConfig, TaliTransform, VideoConfig
from tali.prepare import PrepareSettings, prepare
from tali.quality import MetricsOptions, compute_metrics, select, validate
from tali.sample_data import read_frame_index

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]  # one cluster, one worker


@pytest.fixture(scope="module")
def cluster():
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


def test_read_tali_is_one_block_per_row_group_with_projected_columns(cluster, sample_root):
    import tali.ray

    ds = tali.ray.read_tali(sample_root, split="train", columns=["item_idx", "youtube_video_starting_time"])
    groups = tali.ray.row_groups(sorted(str(p) for p in (sample_root / "data").glob("train-*.parquet")))
    assert len(groups) == 6  # 2 shards of 8 rows, row groups of 3
    blocks = ds.materialize()
    assert blocks.num_blocks() == len(groups)
    table = pa.concat_tables([ray.get(ref) for ref in blocks.to_arrow_refs()])
    assert table.column_names == ["item_idx", "youtube_video_starting_time"]
    assert sorted(table.column("item_idx").to_pylist()) == list(range(16))


def test_map_batches_gives_the_samples_tali_transform_gives(cluster, sample_root, rows):
    import tali.ray

    config = TaliConfig(
        modalities=["video", "audio", "youtube_subtitle_text"],
        video=VideoConfig(num_frames=4, size=112),
        audio=AudioConfig(on_missing="zeros"),
    )
    ds = tali.ray.read_tali(sample_root, split="val").map_batches(
        tali.ray.TaliBatchTransform(config), batch_size=2, batch_format="pyarrow"
    )
    batch = ds.take_batch(4, batch_format="numpy")
    assert batch["youtube_content_video.frames"].shape == (4, 4, 3, 112, 112)
    for i, item_idx in enumerate(batch["item_idx"] if "item_idx" in batch else batch["key"]):
        local = TaliTransform(config)(rows[int(item_idx)], key=int(item_idx))
        frames = torch.from_numpy(batch["youtube_content_video.frames"][i])
        assert torch.equal(frames, local["youtube_content_video"]["frames"])
        assert read_frame_index(frames[0]) >= 0
        assert batch["youtube_subtitle_text.text"][i] == local["youtube_subtitle_text"]["text"]


def test_validate_metrics_and_filter_on_ray_equal_the_local_run(cluster, sample_root, tmp_path):
    local = validate(sample_root, split="val", report=tmp_path / "local.json")
    on_ray = validate(sample_root, split="val", report=tmp_path / "ray.json", ray=True)
    assert on_ray.summary() == local.summary() and on_ray.failures == local.failures
    opts = MetricsOptions()
    a = compute_metrics(sample_root, split="val", out=tmp_path / "m-local.parquet", options=opts)
    b = compute_metrics(sample_root, split="val", out=tmp_path / "m-ray.parquet", options=opts, ray=True)
    assert a.equals(b)
    result = select(sample_root, split="train", where="item_idx % 3 != 1")
    s1 = result.write_shards(tmp_path / "f-local", rows_per_shard=4, row_group_size=3)
    s2 = result.write_shards(tmp_path / "f-ray", rows_per_shard=4, row_group_size=3, ray=True)
    assert s1 == s2 and s1.ok and len(s1.shards) == 3
    for name in s1.shards:
        assert filecmp.cmp(
            tmp_path / "f-local" / "data" / name, tmp_path / "f-ray" / "data" / name, shallow=False
        )


@pytest.fixture(scope="module")
def two_short_shards(sample_root, tmp_path_factory) -> Path:
    """Two shards of the 12 s clip (rows 8 and 21): cheap to re-encode."""
    root = tmp_path_factory.mktemp("two")
    (root / "data").mkdir()
    for k, (name, item) in enumerate(
        (("train-00001-of-00002.parquet", 8), ("test-00000-of-00001.parquet", 21))
    ):
        table = pq.read_table(sample_root / "data" / name)
        one = table.filter(pa.compute.equal(table.column("item_idx"), item))
        pq.write_table(one, root / "data" / f"train-{k:05d}-of-00002.parquet")
    return root


def test_prepare_on_ray_survives_a_killed_worker_and_equals_the_local_run(
    cluster, two_short_shards, tmp_path
):
    settings = PrepareSettings(preset="ultrafast")
    local = prepare(two_short_shards, tmp_path / "local", settings=settings)
    out = tmp_path / "ray"
    killed: list[int] = []

    def kill_first_worker() -> None:
        # The job's partial file carries its worker's pid: kill that process mid-shard.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for partial in (out / "data").glob(".*.partial-*") if (out / "data").exists() else []:
                pid = int(partial.name.rsplit("-", 1)[1])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    report = prepare(two_short_shards, out, settings=settings, ray=True)
    killer.join()
    assert killed, "a worker was killed mid-task"
    assert report.ok and report.summary()["written"] == local.summary()["written"] == 2
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"], "no partial left"
    for name in names:
        a, b = pq.read_table(tmp_path / "local" / "data" / name), pq.read_table(out / "data" / name)
        assert a.equals(b), f"{name} differs from the local run"
