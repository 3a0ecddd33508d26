"""The gallery end to end: cards sorted by any column and filtered by the sandboxed WHERE,
paged; tagged rows and saved filters written as `tali filter --index` files that
`TaliDataset(item_ids=...)` and `tali filter` consume. Real uvicorn, real Chromium."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tali import TaliConfig, TaliDataset, sample_data
from tali.cli.main import main
from tali.config import ImageConfig
from tali.quality.filter import load_index
from tali.view import Catalog, ViewerServer

OWN = {"X-Tali-View": "1"}
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture(scope="module")
def gallery(
    catalog: Catalog, val_metrics: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ViewerServer]:
    folder = tmp_path_factory.mktemp("selections")
    with ViewerServer(catalog, port=0, metrics=val_metrics, selections=folder) as running:
        yield running


def _get(server: ViewerServer, path: str, **params: Any) -> Any:
    response = httpx.get(f"{server.base_url}{path}", params=params, headers=OWN, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_gallery_pages_sort_by_any_column_and_filter(gallery: ViewerServer, truth: dict[int, Any]) -> None:
    first = _get(gallery, "/api/gallery", split="train", per_page=5)
    assert first["total"] == 16 and first["pages"] == 4
    assert [c["index"] for c in first["cards"]] == [0, 1, 2, 3, 4]
    last = _get(gallery, "/api/gallery", split="train", per_page=5, page=3)
    assert [c["index"] for c in last["cards"]] == [15]
    card = first["cards"][1]
    facts = truth[card["item_idx"]]
    assert card["title"] == f"youtube title {card['item_idx']}" and card["languages"] == facts["languages"]
    down = _get(gallery, "/api/gallery", split="train", sort="item_idx", order="desc", per_page=3)
    assert [c["item_idx"] for c in down["cards"]] == [15, 14, 13]
    # A metrics column (val has a metrics table): widest first, ties in shard order.
    wide = _get(gallery, "/api/gallery", split="val", sort="video_width", order="desc")
    widths = [truth[c["item_idx"]]["width"] for c in wide["cards"]]
    assert widths == sorted(widths, reverse=True) and [c["sort_value"] for c in wide["cards"]] == widths
    assert wide["cards"][0]["metrics"]["video_width"] == widths[0]
    even = _get(
        gallery, "/api/gallery", split="train", where="item_idx % 2 = 0", sort="item_idx", order="desc"
    )
    assert [c["item_idx"] for c in even["cards"]] == list(range(14, -1, -2)) and even["total"] == 8
    bad = httpx.get(
        f"{gallery.base_url}/api/gallery", params={"sort": "x; DROP TABLE rows"}, headers=OWN, timeout=30
    )
    assert bad.status_code == 400 and "not a column the gallery can sort by" in bad.json()["error"]
    refused = httpx.get(f"{gallery.base_url}/api/gallery", params={"where": "item_idx = 1"}, timeout=30)
    assert refused.status_code == 403  # runs SQL: the viewer's page only


def test_a_selection_feeds_the_dataset_and_tali_filter(
    gallery: ViewerServer, sample_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"{gallery.base_url}/api/selection"
    tagged = httpx.post(url, json={"name": "picked", "split": "train", "indices": [9, 2, 4, 2]}, headers=OWN)
    assert tagged.status_code == 200, tagged.text
    saved = tagged.json()
    assert saved["kept"] == 3 and saved["where"] == "item_idx IN (2, 4, 9)"
    ids = load_index(saved["path"])
    assert ids == [2, 4, 9]
    dataset = TaliDataset(sample_root, split="train", config=TaliConfig(modalities=["text"]), item_ids=ids)
    assert sorted(dataset[i]["item_idx"] for i in range(len(dataset))) == [2, 4, 9]
    # tali filter takes the selection's WHERE and writes the same index.
    out = tmp_path / "again.json"
    blob = json.loads(Path(saved["path"]).read_text())
    assert (
        main(
            [
                "filter",
                str(sample_root),
                "--split",
                blob["split"],
                "--where",
                blob["where"],
                "--index",
                str(out),
            ]
        )
        == 0
    )
    assert load_index(out) == ids
    capsys.readouterr()

    by_filter = httpx.post(
        url, json={"name": "even", "split": "train", "where": "item_idx % 2 = 0"}, headers=OWN
    )
    assert by_filter.status_code == 200
    mine = json.loads(Path(by_filter.json()["path"]).read_text())
    assert (
        main(
            [
                "filter",
                str(sample_root),
                "--split",
                "train",
                "--where",
                "item_idx % 2 = 0",
                "--index",
                str(out),
            ]
        )
        == 0
    )
    assert mine == json.loads(out.read_text())  # byte for byte what tali filter --index writes
    listed = _get(gallery, "/api/selections")["selections"]
    assert {s["name"] for s in listed} >= {"picked", "even"}

    for body, words in (
        ({"name": "../escape", "split": "train", "indices": [1]}, "selection name"),
        ({"name": "x", "split": "train", "indices": [99]}, "indices must be a list of rows in 0..15"),
        ({"name": "x", "split": "train", "indices": [1], "where": "true"}, "either indices"),
        ({"name": "x", "split": "nosuch", "indices": [1]}, "no split 'nosuch'"),
    ):
        response = httpx.post(url, json=body, headers=OWN)
        assert response.status_code in (400, 404) and words in response.json()["error"], response.text
    assert not (Path(saved["path"]).parent.parent / "escape.json").exists()
    cross = httpx.post(
        url, json={"name": "y", "split": "train", "indices": [1]}, headers={"Origin": "http://evil.example"}
    )
    assert cross.status_code == 403


def _decode(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


READ_IMAGES = """(imgs) => imgs.map((img) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  canvas.getContext("2d").drawImage(img, 0, 0);
  return canvas.toDataURL("image/png");
})"""


@pytest.mark.xdist_group("browser")
@pytest.mark.browser
def test_gallery_in_the_browser_tags_rows_saves_selections_and_screenshots(
    page: Any, gallery: ViewerServer, sample_root: Path, tmp_path: Path, truth: dict[int, Any]
) -> None:
    page.goto(f"{gallery.base_url}/gallery/train?per_page=12")
    page.wait_for_function("document.body.dataset.loaded === 'train/0'", timeout=30_000)
    assert page.locator("#grid .card").count() == 12
    assert page.inner_text("#page-info") == "page 1 of 2"
    page.wait_for_function(
        "[...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    images = page.eval_on_selector_all("#grid img.image", READ_IMAGES)
    items = [
        int(x) for x in page.eval_on_selector_all("#grid .card", "cards => cards.map(c => c.dataset.item)")
    ]
    assert [sample_data.read_image_code(_decode(u)) for u in images[:4]] == items[:4]  # each card's own image
    # Each card's clip frame is the loader's thumbnail of its row (the middle frame).
    posters = page.eval_on_selector_all("#grid img.poster", READ_IMAGES)
    config = TaliConfig(modalities=["youtube_thumbnail_image"], image=ImageConfig(size=224))
    loader = TaliDataset(sample_root, split="train", config=config)
    for k in (0, 5):
        expected = loader[k]["youtube_thumbnail_image"]["pixels"].permute(1, 2, 0).numpy()
        assert np.array_equal(_decode(posters[k]), expected)
        facts = truth[items[k]]
        middle = sample_data.frame_index_at(facts, facts["duration_seconds"] / 2)
        assert abs(sample_data.read_frame_index(_decode(posters[k])) - middle) <= facts["fps"]
    page.click("#next-page")
    page.wait_for_function("document.body.dataset.loaded === 'train/1'")
    assert page.locator("#grid .card").count() == 4

    page.select_option("#sort", "item_idx")
    page.select_option("#order", "desc")
    page.wait_for_function("document.body.dataset.loaded === 'train/0'")
    assert page.locator("#grid .card").first.get_attribute("data-item") == "15"
    page.fill("#where", "item_idx % 3 = 0")
    page.click("#apply-filter")
    page.wait_for_function(
        "document.body.dataset.loaded === 'train/0' && document.querySelectorAll('#grid .card').length === 6"
    )
    assert page.inner_text("#status") == "6 of 16 rows pass"
    assert "where=item_idx" in page.url and "order=desc" in page.url

    for index in (12, 3):
        page.locator(f"#grid .card[data-index='{index}'] input.tag").check()
    assert page.inner_text("#tag-count") == "2 tagged"
    page.fill("#selection-name", "two-rows")
    page.click("#save-tagged")
    page.wait_for_function("document.body.dataset.saved === 'two-rows'")
    saved = json.loads(page.evaluate("fetch('/api/selections').then(r => r.text())"))
    path = next(s["path"] for s in saved["selections"] if s["name"] == "two-rows")
    assert load_index(path) == [3, 12]
    page.fill("#selection-name", "every-third")
    page.click("#save-filter")
    page.wait_for_function("document.body.dataset.saved === 'every-third'")
    every = next(
        s
        for s in json.loads(page.evaluate("fetch('/api/selections').then(r => r.text())"))["selections"]
        if s["name"] == "every-third"
    )
    assert load_index(every["path"]) == [0, 3, 6, 9, 12, 15] and every["where"] == "item_idx % 3 = 0"
    dataset = TaliDataset(
        sample_root, split="train", config=TaliConfig(modalities=["text"]), item_ids=load_index(every["path"])
    )
    assert len(dataset) == 6

    page.evaluate("document.getElementById('selections-box').open = true")
    page.wait_for_function(
        "[...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    # `make screenshots` (-k screenshots) writes docs/img/viewer-gallery.png.
    out = DOCS_IMG if os.environ.get("TALI_UPDATE_SCREENSHOTS") == "1" else tmp_path
    page.screenshot(path=str(out / "viewer-gallery.png"), full_page=True)
    shot = Image.open(out / "viewer-gallery.png")
    assert shot.width >= 700 and len(set(np.asarray(shot.convert("L")).reshape(-1)[::97].tolist())) > 20

    page.click("#grid .card[data-index='12'] a")
    page.wait_for_function("document.body.dataset.loaded === 'train/12'", timeout=30_000)
