"""`tali view` on a Hub dataset without downloading it: the rows a page shows are read from
their own pages by HTTP range requests (loopback Hub serving TALI's real shape), counted."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from tali.data.sources import resolve_local_files
from tali.errors import TaliConfigError
from tali.sample_data.hub_server import HubServer
from tali.sample_data.realshape import write_real_shaped
from tali.view import Catalog
from tali.view.app import create_app


@pytest.fixture(scope="module")
def shape(tmp_path_factory):
    """Two 120-row train shards (100-row row groups, ~400 KB clips), one val shard."""
    return write_real_shaped(
        tmp_path_factory.mktemp("remote-view") / "TALI",
        splits={"train": (2, 120), "val": (1, 30)},
        row_group_rows=100,
        row_bytes=400_000,
    )


def test_browsing_a_hub_dataset_reads_only_the_rows_shown(shape, tmp_path, monkeypatch):
    monkeypatch.setenv("TALI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    local = [pq.read_table(f) for f in resolve_local_files(shape.root, "train")]
    with HubServer(shape.root) as hub:
        catalog = Catalog(["Antreas/TALI"], storage_options={"endpoint": hub.endpoint})
        assert list(catalog.splits) == ["train", "val"] and catalog.split("train").num_rows == 240
        client = TestClient(
            create_app(catalog, allowed_hosts=["testserver"]),
            raise_server_exceptions=False,
            headers={"X-Tali-View": "1"},
        )
        before = sum(r.sent for r in hub.log)
        for index in (5, 150, 239):
            answer = client.get(f"/api/row/train/{index}")
            assert answer.status_code == 200, answer.text
            shard, row = divmod(index, 120)
            assert answer.json()["item_idx"] == local[shard].column("item_idx")[row].as_py()
            video = client.get(f"/media/train/{index}/video.mp4")
            assert video.status_code == 200
            assert video.content == local[shard].column("youtube_video_content")[row].as_py()
        sent = sum(r.sent for r in hub.log) - before
        shard_bytes = sum(Path(f).stat().st_size for f in resolve_local_files(shape.root, "train"))
        # footers, the pages holding the rows (a few clips each at this row size) and the small
        # columns of their row groups: not the shards, nor even their row groups (~88 MB each)
        assert sent < shard_bytes / 8, (sent, shard_bytes)
        assert not list(tmp_path.rglob("*.parquet"))  # nothing downloaded
        for url in ("/api/search?q=title", "/api/filter?split=train&where=item_idx>3"):
            refused = client.get(url.replace("search?", "search?split=train&"))
            assert refused.status_code == 400 and "tali download" in refused.json()["error"], refused.text
    with pytest.raises(TaliConfigError, match="needs them on this disk"):
        catalog.search("train", "title")
