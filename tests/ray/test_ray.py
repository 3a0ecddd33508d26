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
from tali.errors import TaliSourceError

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
    finished = threading.Event()

    def kill_first_worker() -> None:
        # The job's partial file carries its worker's pid: kill that process mid-shard.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed and not finished.is_set():
            # Shards are written in the run's hidden staging directory, published at the end.
            for partial in out.glob(".tali-prepare.parts/*/data/.*.partial-*"):
                pid = int(partial.name.rsplit("-", 1)[1])
                if pid != os.getpid():  # never this test's own process (asserted below)
                    os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_first_worker, daemon=True)
    killer.start()
    try:
        report = prepare(two_short_shards, out, settings=settings, ray=True)
    finally:
        finished.set()
        killer.join()
    assert killed, "a worker was killed mid-task"
    assert killed[0] != os.getpid(), "the shard was written in the driver, not in a Ray worker"
    assert report.ok and report.summary()["written"] == local.summary()["written"] == 2
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"], "no partial left"
    for name in names:
        a, b = pq.read_table(tmp_path / "local" / "data" / name), pq.read_table(out / "data" / name)
        assert a.equals(b), f"{name} differs from the local run"


def _garbage_clip_shard(source: Path, target: Path, *, good_rows: int) -> None:
    """``good_rows`` copies of the source's row, then one whose mp4 is garbage (it fails last)."""
    table = pq.read_table(source)
    rows = pa.concat_tables([table] * (good_rows + 1))
    video = rows.column("youtube_video_content").to_pylist()
    video[-1] = b"not an mp4 at all" * 64
    index = rows.schema.get_field_index("youtube_video_content")
    rows = rows.set_column(index, rows.schema.field(index), pa.array(video, rows.schema.field(index).type))
    pq.write_table(rows, target)


def test_a_failed_prepare_on_ray_publishes_nothing(cluster, two_short_shards, tmp_path):
    """Issue 24 item 6: shard 0 finishes, shard 1 fails on its last row; no shard of the run
    may appear in OUT/data (before, shard 0 was there, looking complete), and a rerun after
    the repair reuses the staged shard 0."""
    from tali.errors import TaliDecodeError

    source = tmp_path / "src"
    (source / "data").mkdir(parents=True)
    good = two_short_shards / "data" / "train-00000-of-00002.parquet"
    (source / "data" / "train-00000-of-00002.parquet").write_bytes(good.read_bytes())
    bad = source / "data" / "train-00001-of-00002.parquet"
    _garbage_clip_shard(good, bad, good_rows=2)
    settings = PrepareSettings(preset="ultrafast", on_error="raise")
    out = tmp_path / "out"
    with pytest.raises(TaliDecodeError, match="train-00001-of-00002"):
        prepare(source, out, settings=settings, ray=True)
    assert not (out / "data").exists(), "a failed Ray prepare left a partial output"
    assert not (out / "tali-prepare.json").exists()
    staged = list(out.glob(".tali-prepare.parts/*/data/train-00000-of-00002.parquet"))
    assert len(staged) == 1, "the finished shard is kept (hidden) for the rerun"
    pq.write_table(pq.read_table(good), bad)  # repaired
    report = prepare(source, out, settings=settings, ray=True)
    assert report.ok and sorted(p.name for p in (out / "data").iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    assert not (out / ".tali-prepare.parts").exists()


def _corrupt_pages(path: Path) -> None:
    """Zero every byte between the magic and the footer: the footer (read by the driver's
    plan) stays valid, every page (read by the Ray tasks) is garbage."""
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    data[4 : len(data) - 8 - footer] = bytes(len(data) - 12 - footer)
    path.write_bytes(bytes(data))


def test_a_failed_filter_on_ray_keeps_the_old_output_whole(cluster, sample_root, tmp_path):
    """Ray tasks fail mid-run (a source shard's pages break after the plan read its footer):
    the published output is the previous one, byte for byte, and nothing staged is left."""
    source = tmp_path / "src"
    (source / "data").mkdir(parents=True)
    for shard in sorted((sample_root / "data").glob("train-*.parquet")):
        (source / "data" / shard.name).write_bytes(shard.read_bytes())
    result = select(source, split="train", where="item_idx % 3 != 1")
    out = tmp_path / "out"
    result.write_shards(out, rows_per_shard=4, row_group_size=3, ray=True)
    before = {p.name: p.read_bytes() for p in (out / "data").iterdir()}
    assert len(before) == 3
    _corrupt_pages(max((source / "data").glob("train-*.parquet")))
    # The tasks run side by side: whichever of the broken shard's row groups fails first is named.
    with pytest.raises(TaliSourceError, match=r"cannot read row group \d+ of train-00001-of-00002.parquet"):
        result.write_shards(out, rows_per_shard=4, row_group_size=3, ray=True, overwrite=True)
    after = {p.name: p.read_bytes() for p in (out / "data").iterdir()}
    assert after == before, "the old output changed after a failed Ray filter"
    assert [p.name for p in out.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")] == []
