"""The viewer end to end in headless Chromium (Playwright, Debian's chromium): the page plays
the clip, highlights the subtitle line that covers the playhead, and shows the frames the
loader returns for the config typed into it, read back from the page's own images.

All tests share one server and one browser (``xdist_group``); ``TALI_UPDATE_SCREENSHOTS=1``
also writes the README's screenshots into docs/img/.
"""

from __future__ import annotations

import base64
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tali import TaliDataset, sample_data
from tali.view import Catalog, SampleParams, ViewerServer

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.browser]

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
#: Draws each image onto a canvas and returns what the page holds, as PNG data URLs.
READ_IMAGES = """(imgs) => imgs.map((img) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  canvas.getContext("2d").drawImage(img, 0, 0);
  return canvas.toDataURL("image/png");
})"""


def _decode(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def _open(page: Any, server: ViewerServer, path: str) -> None:
    page.goto(server.base_url + path)
    split_index = path.split("?")[0].removeprefix("/row/")
    page.wait_for_function(f"document.body.dataset.loaded === {split_index!r}", timeout=30_000)
    page.wait_for_function("document.body.dataset.window === 'ready'", timeout=30_000)


def _seek(page: Any, seconds: float) -> None:
    page.evaluate(
        """(t) => new Promise((done) => {
          const video = document.getElementById("video");
          video.pause();
          video.addEventListener("seeked", done, { once: true });
          video.currentTime = t;
        })""",
        seconds,
    )


def test_row_page_shows_the_row_and_plays_the_clip(
    page: Any, server: ViewerServer, truth: dict[int, dict[str, Any]]
) -> None:
    video_statuses: list[int] = []
    page.on("response", lambda r: video_statuses.append(r.status) if r.url.endswith("/video.mp4") else None)
    _open(page, server, "/row/train/3")
    item = page.evaluate("window.taliView.row.item_idx")
    facts = truth[item]
    image = _decode(page.eval_on_selector_all("#image", READ_IMAGES)[0])
    assert sample_data.read_image_code(image) == item
    assert page.locator("#lang-tabs .tab").all_inner_texts() == facts["languages"]
    page.locator("#lang-tabs .tab").last.click()
    assert f"caption {item} {facts['languages'][-1]}" in page.inner_text("#lang-panel")
    assert page.inner_text("#yt-title") == f"youtube title {item}"
    assert page.evaluate("document.getElementById('video').src").endswith("/media/train/3/video.mp4")
    page.evaluate("document.getElementById('video').play()")
    page.wait_for_function("document.getElementById('video').currentTime > 0.3", timeout=20_000)
    first = page.evaluate("document.getElementById('video').currentTime")
    page.wait_for_function(f"document.getElementById('video').currentTime > {first} + 0.3", timeout=20_000)
    left = page.evaluate("parseFloat(document.getElementById('playhead').style.left)")
    assert left > 0  # the playhead follows playback
    _seek(page, 25.0)  # far ahead: Chromium fetches the clip by byte ranges
    assert 206 in video_statuses and all(s in (200, 206) for s in video_statuses), video_statuses


def test_seeking_highlights_the_line_covering_that_moment(
    page: Any, server: ViewerServer, truth: dict[int, dict[str, Any]]
) -> None:
    _open(page, server, "/row/train/1")
    start = truth[page.evaluate("window.taliView.row.item_idx")]["start_second"]
    for t in (7.2, 7.7, 0.1, 21.55, 29.9):
        _seek(page, t)
        # The sample's line "second s" starts at absolute s + 0.5 and shows until the next one.
        expected = sample_data.subtitle_text(math.floor(start + t - 0.5))
        page.wait_for_function(
            "(text) => document.querySelector('#subtitles li.active .text')?.textContent === text",
            arg=expected,
            timeout=10_000,
        )
        assert page.locator("#subtitles li.active").count() == 1
        assert page.inner_text("#active-line") == expected
        cue = page.get_attribute("#subtrack .cue.active", "data-k")
        assert cue == page.get_attribute("#subtitles li.active", "data-k")
    page.locator("#subtitles li", has_text=sample_data.subtitle_text(start + 12)).click()
    page.wait_for_function("Math.abs(document.getElementById('video').currentTime - 12.5) < 0.05")


def test_window_strip_shows_the_frames_the_loader_returns(
    page: Any, server: ViewerServer, sample_root: Path, truth: dict[int, dict[str, Any]]
) -> None:
    _open(page, server, "/row/train/2")
    page.fill("#cfg-seconds", "2")
    page.select_option("#cfg-start-mode", "at")
    page.fill("#cfg-start", "12.5")
    page.fill("#cfg-num-frames", "5")
    page.select_option("#cfg-selection", "random")
    page.fill("#cfg-seed", "11")
    page.fill("#cfg-epoch", "2")
    page.click("#apply-config")
    page.wait_for_function("document.body.dataset.window === 'ready'", timeout=30_000)
    assert "num_frames=5" in page.url and "seed=11" in page.url

    params = SampleParams(seconds=2.0, start=12.5, num_frames=5, selection="random", seed=11, epoch=2)
    dataset = TaliDataset(sample_root, split="train", config=params.config())
    dataset.set_epoch(2)
    expected = dataset[2]["youtube_content_video"]
    loader_codes = [sample_data.read_frame_index(f) for f in expected["frames"]]
    shown = [_decode(u) for u in page.eval_on_selector_all("#strip img", READ_IMAGES)]
    assert [sample_data.read_frame_index(f) for f in shown] == loader_codes
    assert all(np.array_equal(s, f.permute(1, 2, 0).numpy()) for s, f in zip(shown, expected["frames"]))
    facts = truth[dataset[2]["item_idx"]]
    pts = [float(p) for p in page.eval_on_selector_all("#strip img", "imgs => imgs.map(i => i.dataset.pts)")]
    assert pts == expected["pts_seconds"].tolist()
    assert loader_codes == [
        sample_data.expected_frame_code(facts, sample_data.frame_index_at(facts, t)) for t in pts
    ]

    # The highlighted window sits at [12.5, 14.5] of the 30 s timeline.
    line, box = page.locator("#timeline").bounding_box(), page.locator("#window-box").bounding_box()
    assert (box["x"] - line["x"]) / line["width"] == pytest.approx(12.5 / 30, abs=0.01)
    assert box["width"] / line["width"] == pytest.approx(2 / 30, abs=0.01)

    # A random start drawn from another seed: the page follows the loader's draw.
    page.select_option("#cfg-start-mode", "random")
    page.fill("#cfg-seed", "5")
    page.click("#apply-config")
    page.wait_for_function("document.body.dataset.window === 'ready'", timeout=30_000)
    dataset = TaliDataset(
        sample_root,
        split="train",
        config=SampleParams(seconds=2.0, num_frames=5, selection="random", seed=5).config(),
    )
    dataset.set_epoch(2)
    again = dataset[2]
    codes = [
        sample_data.read_frame_index(_decode(u)) for u in page.eval_on_selector_all("#strip img", READ_IMAGES)
    ]
    assert codes == [sample_data.read_frame_index(f) for f in again["youtube_content_video"]["frames"]]
    start = again["window"]["start_seconds"]
    assert page.evaluate("document.getElementById('window-info').textContent").startswith(
        f"window [{start:.3f},"
    )


def test_navigation_search_and_filter(page: Any, server: ViewerServer) -> None:
    _open(page, server, "/row/train/0")
    loaded = "document.body.dataset.loaded === {!r}"
    page.click("#next")
    page.wait_for_function(loaded.format("train/1"))
    page.keyboard.press("ArrowRight")
    page.wait_for_function(loaded.format("train/2"))
    page.click("#prev")
    page.wait_for_function(loaded.format("train/1"))
    page.select_option("#shard", "1")
    page.wait_for_function(loaded.format("train/8"))
    page.fill("#item", "17")
    page.press("#item", "Enter")
    page.wait_for_function(loaded.format("val/1"))
    page.select_option("#split", "train")
    page.wait_for_function(loaded.format("train/0"))
    page.fill("#search", "caption 5 en")
    page.click("#hits li[data-index='5']")
    page.wait_for_function(loaded.format("train/5"))

    page.fill("#where", "item_idx % 4 = 0")
    page.click("#apply-filter")
    page.wait_for_function(loaded.format("train/0"))  # row 5 does not pass: the first row that does
    assert page.inner_text("#filter-status") == "4 of 16 rows"
    page.click("#next")
    page.wait_for_function(loaded.format("train/4"))
    assert "where=item_idx" in page.url
    page.fill("#where", "item_idx ==== 1")
    page.click("#apply-filter")
    page.wait_for_selector("#message:not([hidden])")
    assert page.inner_text("#message").startswith("filter failed")

    response = page.goto(server.base_url + "/row/train/999")
    assert response.status == 404
    assert page.inner_text("#error") == "row 999 is out of range: split 'train' has rows 0..15"


def test_screenshots(page: Any, server: ViewerServer, tmp_path: Path) -> None:
    _open(page, server, "/row/train/1?seconds=3&start=12&num_frames=8&selection=uniform&seed=0&epoch=0")
    _seek(page, 13.2)
    page.wait_for_function("document.getElementById('spec').complete")
    page.wait_for_selector("#subtitles li.active")
    out = DOCS_IMG if os.environ.get("TALI_UPDATE_SCREENSHOTS") == "1" else tmp_path
    page.evaluate("window.scrollTo(0, 0)")
    # The YouTube panel cut from the whole page (an element shot would scroll it under the sticky header).
    panel = page.locator("#youtube").bounding_box()
    shots = {"viewer-row.png": {}, "viewer-timeline.png": {"clip": panel}}
    for name, options in shots.items():
        page.screenshot(path=str(out / name), full_page=True, **options)
        shot = Image.open(out / name)
        assert shot.width >= 700 and shot.height >= 500
        assert len(set(np.asarray(shot.convert("L")).reshape(-1)[::97].tolist())) > 20  # not blank


def test_a_broken_row_renders_its_errors(page: Any, broken_root: tuple[Path, Path]) -> None:
    root, report = broken_root
    with ViewerServer(Catalog([root]), port=0, report=report) as broken:
        page.goto(broken.url)
        page.wait_for_function("document.body.dataset.loaded === 'train/0'", timeout=30_000)
        page.wait_for_function("document.body.dataset.window === 'error'", timeout=30_000)
        assert page.inner_text("#clip-info").startswith("TaliDecodeError")
        assert "[clip]" in page.inner_text("#validation")
        assert "item_idx=0" in page.inner_text("#strip")
        assert page.locator("#lang-tabs .tab").count() == 1  # the rest of the row still shows
        page.click("#next")
        page.wait_for_function("document.body.dataset.loaded === 'train/1'")
        page.wait_for_selector("#subtitles li.error")
        assert page.inner_text("#subtitles").startswith("TaliSubtitleError")


def test_chromium_plays_every_real_world_clip(
    page: Any, server: ViewerServer, truth: dict[int, dict[str, Any]]
) -> None:
    _open(page, server, "/row/realworld/0")
    probes = page.evaluate(
        """(n) => Promise.all([...Array(n).keys()].map((i) => new Promise((done) => {
          const video = document.createElement("video");
          video.muted = true;
          video.preload = "auto";
          video.onloadeddata = () => done({ i, width: video.videoWidth, height: video.videoHeight, seconds: video.duration });
          video.onerror = () => done({ i, error: video.error && video.error.code });
          video.src = `/media/realworld/${i}/video.mp4`;
        })))""",
        15,
    )
    items = [
        page.evaluate(f"fetch('/api/row/realworld/{i}').then(r => r.json()).then(b => b.item_idx)")
        for i in range(15)
    ]
    for probe, item in zip(probes, items):
        facts = truth[item]
        assert "error" not in probe, (facts["variant"], probe)
        assert (probe["width"], probe["height"]) == (facts["display_width"], facts["display_height"]), facts[
            "variant"
        ]


def test_a_row_without_audio_shows_no_spectrogram_image(page: Any, server: ViewerServer) -> None:
    broken_images: list[str] = []
    page.on(
        "response",
        lambda r: broken_images.append(r.url) if "spectrogram" in r.url and r.status != 200 else None,
    )
    _open(page, server, "/row/train/7")  # the sample's clip without an audio stream
    assert page.evaluate("window.taliView.row.clip.has_audio") is False
    assert not page.locator("#spec").is_visible()  # `hidden` wins over #spec {display: block}
    assert page.locator("#spec").bounding_box() is None and not broken_images
    _open(page, server, "/row/train/1")
    page.wait_for_function("document.getElementById('spec').complete")
    assert page.locator("#spec").is_visible()
    assert page.evaluate("document.getElementById('spec').naturalWidth") == 800


def test_the_window_audio_player_keeps_its_width_beside_long_subtitles(
    page: Any, server: ViewerServer
) -> None:
    page.set_viewport_size({"width": 1000, "height": 900})
    _open(page, server, "/row/train/1?seconds=whole&start=start&num_frames=4")
    text = page.inner_text("#window-text")
    assert text.count("second") >= 25  # the whole clip's lines: a long text
    player = page.locator("#window-audio").bounding_box()
    assert player is not None and player["width"] >= 250, player


def test_window_errors_in_the_page_use_the_forms_words(page: Any, server: ViewerServer) -> None:
    _open(page, server, "/row/train/0")
    page.fill("#cfg-seconds", "100")
    page.click("#apply-config")
    page.wait_for_function("document.body.dataset.window === 'error'", timeout=30_000)
    shown = page.inner_text("#strip")
    assert "type 'whole' in the seconds box" in shown and "None" not in shown, shown


def test_a_rotated_clip_shows_its_display_size(
    page: Any, server: ViewerServer, truth: dict[int, dict[str, Any]]
) -> None:
    index = next(
        i
        for i, item in enumerate(sorted(k for k, v in truth.items() if v.get("split") == "realworld"))
        if truth[item].get("rotation")
    )
    _open(page, server, f"/row/realworld/{index}")
    facts = truth[page.evaluate("window.taliView.row.item_idx")]
    info = page.inner_text("#clip-info")
    assert info.startswith(
        f"{facts['display_width']}×{facts['display_height']} (stored {facts['width']}×{facts['height']}, "
        f"rotated {facts['rotation']}°)"
    ), info
    page.wait_for_function("document.getElementById('video').videoWidth > 0", timeout=20_000)
    shown = page.evaluate("(v => [v.videoWidth, v.videoHeight])(document.getElementById('video'))")
    assert shown == [facts["display_width"], facts["display_height"]]
