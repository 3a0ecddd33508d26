"""The loaders on TALI's real shape: real shard names (hash suffix), metadata/ and a card,
the converter's second revision, ~100-row row groups of large rows, hundreds of shards.

Rows are the sample's rows again (``tali.sample_data.realshape``), so content is checked
against the raw parquet rows and against the ground truth of the row each one copies."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

import tali
from tali.data.row_source import RowSource
from tali.data.sampler import RowGroupShuffleSampler
from tali.data.sources import available_splits, resolve_local_files
from tali.errors import TaliConfigError, TaliSourceError
from tali.sample_data.hub_server import HubServer
from tali.sample_data.patterns import read_frame_index
from tali.sample_data.realshape import shard_name, write_real_shaped

from .conftest import TEXT

REPO = "Antreas/TALI"
AV = tali.TaliConfig(modalities=("youtube_content_video", "youtube_content_audio"))


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    """The same rows in the three parquet layouts the loader must handle (120-row shards:
    a 100-row and a 20-row row group each; ~400 KB clips)."""
    base = tmp_path_factory.mktemp("realshape")
    return {
        writer: write_real_shaped(
            base / writer,
            splits={"train": (3, 120), "val": (1, 50)},
            row_group_rows=100,
            row_bytes=400_000,
            writer=writer,
        )
        for writer in ("datasets", "pyarrow", "plain")
    }


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TALI_CACHE_DIR", str(tmp_path / "tali-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    return tmp_path


def test_real_names_resolve_and_are_checked_complete(shapes, tmp_path):
    root = shapes["datasets"].root
    names = [Path(f).name for f in resolve_local_files(root, "train")]
    assert names == sorted(names) and names[0] == shard_name("train", 0, 3)
    assert all(
        n.startswith("train-0000") and "-of-00003-" in n and len(n.split("-")[-1]) == 24 for n in names
    )
    assert available_splits(root) == ["train", "val"]
    assert available_splits(shapes["datasets"].convert_root) == ["train", "val"]
    assert len(resolve_local_files(shapes["datasets"].convert_root, "val")) == 1
    # a split with a shard missing is refused, naming it, hash suffix and all
    copy = tmp_path / "copy" / "data"
    copy.mkdir(parents=True)
    for f in resolve_local_files(root, "train")[::2]:
        os.link(f, copy / Path(f).name)
    with pytest.raises(
        TaliSourceError,
        match=r"split train is incomplete: 1 of 3 shards missing \(train-00001-of-00003-[0-9a-f]{16}\.parquet\)",
    ):
        resolve_local_files(copy.parent, "train")
    with pytest.raises(TaliSourceError, match="splits there: train, val"):
        resolve_local_files(root, "dev")


@pytest.mark.parametrize(
    "text", ["configs:\n- config_name: default\n  data_files:\n  - split: dev\n    path: data/val-*\n"]
)
def test_the_cards_data_files_come_first(shapes, tmp_path, text):
    root = tmp_path / "carded"
    (root / "data").mkdir(parents=True)
    for f in resolve_local_files(shapes["datasets"].root, "val"):
        os.link(f, root / "data" / Path(f).name)
    (root / "README.md").write_text(f"---\n{text}---\n")
    assert [Path(f).name for f in resolve_local_files(root, "dev")] == [
        Path(f).name for f in resolve_local_files(shapes["datasets"].root, "val")
    ]
    assert "dev" in available_splits(root)


@pytest.mark.parametrize("writer", ["datasets", "pyarrow", "plain"])
def test_every_layout_reads_the_exact_rows(shapes, writer, cache):
    files = resolve_local_files(shapes[writer].root, "train")
    source = RowSource(files, modalities=tali.TaliConfig().modalities)
    modes = {c: dict(n) for c, n in source.layout().items()}
    if writer == "datasets":  # one clip per page: rows read from their own pages
        assert modes["youtube_video_content"] == {"page": 6}
    else:  # a dictionary page or one page per chunk: the row group, with the reason known
        assert modes["youtube_video_content"] == {"row_group": 6}
    tables = [pq.read_table(f, columns=source.columns) for f in files]
    for row in (0, 1, 99, 100, 119, 120, 205, 359):
        shard, offset = divmod(row, 120)
        assert source.read_row(row).to_pylist() == tables[shard].slice(offset, 1).to_pylist(), row


def test_a_map_style_sample_reads_its_own_bytes_at_100_row_groups(shapes, cache):
    """Shuffled A/V access on 100-row row groups: bytes read per sample within 1.2x of
    the row's own projected bytes (it was ~100x: a whole row group per sample)."""
    files = resolve_local_files(shapes["datasets"].root, "train")
    dataset = tali.TaliDataset(files=files, config=AV, cache_row_groups=0)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:12].tolist()
    own = sum(dataset.source.read_row(i).nbytes for i in order)  # warms the page tables too
    before = dataset.source.bytes_read
    ids = [i for f in files for i in pq.read_table(f, columns=["item_idx"]).column(0).to_pylist()]
    for i in order:
        sample = dataset[i]
        assert int(sample["item_idx"]) == ids[i]
        assert sample["youtube_content_video"]["mask"].any()
    read = dataset.source.bytes_read - before - own
    assert read <= 1.2 * own, (read, own)


def test_frames_come_from_the_row_they_claim(shapes, cache):
    """Page-read clips decode to the frames of the sample row they copy (frame codes)."""
    root = shapes["datasets"].root
    dataset = tali.TaliDataset(
        root, split="train", config=tali.TaliConfig(modalities=("youtube_content_video",))
    )
    sample_root = tali.sample_data.build()
    truth = tali.sample_data.load_truth(sample_root)
    for i in (3, 150, 301):
        sample = dataset[i]
        source_item = shapes["datasets"].source_of[int(sample["item_idx"])]
        video = sample["youtube_content_video"]
        fps = truth[source_item]["fps"]
        for frame, pts, real in zip(video["frames"], video["pts_seconds"], video["mask"]):
            if (
                bool(real)
                and truth[source_item].get("black_seconds") is None
                and not truth[source_item].get("frozen_seconds")
            ):
                assert read_frame_index(frame) == round(float(pts) * fps), (i, source_item)


def test_row_group_layouts_get_a_row_group_aware_shuffle(shapes, cache):
    files = resolve_local_files(shapes["pyarrow"].root, "train")
    dataset = tali.TaliDataset(files=files, config=TEXT, cache_row_groups=2)
    sampler = RowGroupShuffleSampler(dataset, window=2, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(len(dataset)))  # each index once
    assert order != sorted(order)
    groups = sampler.groups[torch.tensor(order)].tolist()
    spans = [max(p for p, g in enumerate(groups) if g == k) - groups.index(k) + 1 for k in set(groups)]
    # each row group's rows lie within one window (2 row groups, at most 200 rows); a uniform
    # shuffle spreads every 100-row group over the whole epoch (~360 positions)
    assert max(spans) <= 200, spans
    sampler.set_epoch(1)
    assert list(sampler) != order
    with pytest.raises(TaliConfigError, match="window must be an int >= 1"):
        RowGroupShuffleSampler(dataset, window=0)


def test_streaming_holds_rows_not_row_groups_in_page_mode(shapes, cache):
    files = resolve_local_files(shapes["datasets"].root, "train")
    stream = tali.TaliStream(files, config=TEXT, shuffle=True, buffer_size=16)
    seen = sorted(int(s["item_idx"]) for s in stream)
    assert seen == sorted(
        int(i) for f in files for i in pq.read_table(f, columns=["item_idx"]).column(0).to_pylist()
    )


def test_the_loopback_hub_serves_the_real_tree_and_both_revisions(shapes, cache):
    shape = shapes["datasets"]
    with HubServer(shape.root, revisions={"refs/convert/parquet": shape.convert_root}) as hub:
        assert {"README.md", ".gitattributes"} <= set(hub.files) and any(
            n.startswith("metadata/") for n in hub.files
        )
        stream = tali.load(REPO, split="val", config=TEXT, endpoint=hub.endpoint, progress=False)
        assert len(list(stream)) == 50
        assert not list(cache.rglob("*.parquet"))  # streamed: nothing downloaded
        reads = [r for r in hub.downloads() if r.path.endswith(".parquet")]
        assert reads and all(r.status == 206 for r in reads)
        converted = tali.load(
            REPO,
            split="val",
            config=TEXT,
            endpoint=hub.endpoint,
            revision="refs/convert/parquet",
            streaming=False,
        )
        assert converted.files[0].endswith("default/val/0000.parquet") and len(converted) == 50
        report = tali.hub.download(
            REPO, split="train[:1]", cache_dir=cache / "hf", endpoint=hub.endpoint, progress=False
        )
        assert [Path(f).name for f in report.files] == [
            Path(resolve_local_files(shape.root, "train")[0]).name
        ]
        with pytest.raises(TaliSourceError, match="splits there: train, val"):
            tali.hub.download(
                REPO, split="dev", cache_dir=cache / "hf", endpoint=hub.endpoint, progress=False
            )


def test_a_large_download_says_how_large_first(shapes, cache, monkeypatch):
    monkeypatch.setattr(tali.hub, "LARGE_DOWNLOAD_BYTES", 1000)
    with (
        HubServer(shapes["datasets"].root) as hub,
        pytest.warns(tali.hub.LargeDownloadWarning, match=r"downloading \d+\.\d+ MB \(1 shards\)"),
    ):
        tali.hub.download(REPO, split="val", cache_dir=cache / "hf", endpoint=hub.endpoint, progress=False)


def test_resume_refuses_a_changed_shard_set(shapes, cache, tmp_path):
    """Two shards swapped (same row-group layout): the state names the shard instead of
    resuming 'ok' while losing and repeating rows."""
    files = resolve_local_files(shapes["datasets"].root, "train")
    stream = tali.TaliStream(files, config=TEXT, shuffle=True)
    it = iter(stream)
    for _ in range(5):
        stream.observe(next(it))
    state = stream.state_dict()
    swapped = tmp_path / "swapped" / "data"
    swapped.mkdir(parents=True)
    for src, dst in zip(files, [files[1], files[0], files[2]]):
        os.link(src, swapped / Path(dst).name)
    again = tali.TaliStream(resolve_local_files(swapped.parent, "train"), config=TEXT, shuffle=True)
    with pytest.raises(
        TaliConfigError, match=r"checkpoint was taken over other shards: shard 0 was 'train-00000"
    ):
        again.load_state_dict(state)
    same = tali.TaliStream(files, config=TEXT, shuffle=True)
    same.load_state_dict(state)  # the same shards resume


def test_footers_are_read_once_per_machine_at_hundreds_of_shards(tmp_path, cache):
    """120 real-named shards, 3 processes starting together: the footer pass is done once
    (the others wait on its lock and read the disk cache), so footer requests == shards."""
    shape = write_real_shaped(
        tmp_path / "many", splits={"train": (120, 4)}, row_group_rows=2, row_bytes=None, duplicate_shards=True
    )
    script = textwrap.dedent(
        f"""
        import sys, tali
        from tali.loading import load
        config = tali.TaliConfig(modalities=("youtube_title_text",))
        stream = load({REPO!r}, split="train", endpoint=sys.argv[1], config=config, shuffle=False)
        print(len(stream.files), next(iter(stream))["item_idx"])
        """
    )
    with HubServer(shape.root, latency=0.01) as hub:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, hub.endpoint], env=env, stdout=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        outs = [p.communicate(timeout=300)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        assert all(o.split() == ["120", "0"] for o in outs), outs
        ranges = [r for r in hub.log if "/resolve/" in r.path and r.range and r.path.endswith(".parquet")]
        tails = [r for r in ranges if not r.range.startswith("bytes=0-")]
        per_shard = {r.path for r in ranges}
        assert len(per_shard) == 120
        footer_requests = len(ranges) - 3 * 2  # each process then reads its first row group
        assert footer_requests <= 120 + 10, (len(ranges), len(tails))


def test_the_tools_work_on_real_names(tmp_path, cache, capsys):
    """validate, durations, filter, prepare's split resolution and download on hash-suffixed names."""
    from tali.cli.main import main

    shape = write_real_shaped(tmp_path / "r", splits={"val": (2, 6)}, row_group_rows=3, row_bytes=None)
    root = str(shape.root)
    assert main(["validate", root, "--split", "val"]) == 0
    assert "0 of 12 rows failed" in capsys.readouterr().out
    assert main(["durations", root, "--split", "val"]) == 0
    assert (shape.root / "data" / "tali-durations.json").is_file()
    assert (
        main(
            ["filter", root, "--split", "val", "--where", "item_idx > 2", "--index", str(tmp_path / "i.json")]
        )
        == 0
    )
    assert "kept 9, dropped 3" in capsys.readouterr().out
    with HubServer(shape.root) as hub:
        out = tmp_path / "dl"
        assert (
            main(
                ["download", "--split", "val", "--endpoint", hub.endpoint, "--local-dir", str(out), "--quiet"]
            )
            == 0
        )
    assert sorted(p.name for p in (out / "data").glob("*.parquet")) == sorted(
        p.name for p in shape.files["val"]
    )
    assert len(tali.load(out, split="val", streaming=False, config=TEXT)) == 12
