"""The viewer's HTTP surface against the sample data's ground truth: byte ranges, the loader's
window, the spectrogram's tones, search and filter, and every kind of bad request."""

from __future__ import annotations

import io
import math
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from starlette.testclient import TestClient

from tali import TaliDataset, sample_data
from tali.cli.main import main
from tali.errors import TaliConfigError
from tali.sql.sandbox import sandboxed_connection
from tali.view import Catalog, SampleParams, ViewerServer, check_host, create_app
from tali.view.media import N_FFT, byte_range

RATE = 16_000


@pytest.fixture(scope="module")
def client(catalog: Catalog, val_metrics: Path) -> TestClient:
    app = create_app(catalog, metrics=val_metrics, allowed_hosts=["testserver"])
    return TestClient(app, raise_server_exceptions=False, headers={"X-Tali-View": "1"})


def _png(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def _wav(body: bytes) -> tuple[np.ndarray, int]:
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[20:36])
    assert (fmt, channels, bits) == (3, 1, 32)
    return np.frombuffer(body[44:], "<f4"), rate


def test_video_is_served_from_the_row_with_http_ranges(client: TestClient, rows: dict[int, Any]) -> None:
    whole = client.get("/media/train/1/video.mp4")
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    data = rows[1]["youtube_video_content"]
    assert whole.content == data
    size = len(data)
    for header, (first, last) in {
        "bytes=100-199": (100, 199),
        "bytes=0-": (0, size - 1),
        f"bytes={size - 10}-{size + 1000}": (size - 10, size - 1),
        "bytes=-500": (size - 500, size - 1),
    }.items():
        part = client.get("/media/train/1/video.mp4", headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert int(part.headers["content-length"]) == last - first + 1
        assert part.content == data[first : last + 1]
    bad = client.get("/media/train/1/video.mp4", headers={"Range": f"bytes={size}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{size}"
    # Several ranges (or another unit): the whole body, as RFC 9110 allows.
    assert client.get("/media/train/1/video.mp4", headers={"Range": "bytes=0-1,5-9"}).status_code == 200
    assert byte_range("items=0-5", 100) is None


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/api/row/train/16", 404, r"row 16 is out of range: split 'train' has rows 0\.\.15"),
        ("/api/row/train/-1", 404, r"row index '-1' is not a non-negative integer"),
        ("/api/row/train/abc", 404, r"row index 'abc' is not"),
        ("/api/row/nosuch/0", 404, r"no split 'nosuch'; this viewer serves: train, val, test"),
        ("/media/train/99/video.mp4", 404, r"row 99 is out of range"),
        ("/api/window/train/0?num_frames=0", 400, r"num_frames=0 is out of range \[1, 64\]"),
        ("/api/window/train/0?num_frames=100000", 400, r"num_frames=100000 is out of range"),
        ("/api/window/train/0?seconds=abc", 400, r"seconds='abc' is not a number"),
        ("/api/window/train/0?seconds=nan", 400, r"seconds='nan' is not a finite number"),
        ("/api/window/train/0?selection=bogus", 400, r"selection='bogus': choose random, uniform"),
        ("/api/window/train/0?start=middle", 400, r"start='middle' is not a number"),
        ("/api/window/train/0?seed=-3", 400, r"seed=-3 is out of range"),
        ("/media/train/0/frame/8.png", 404, r"frame '8' is not in this window's 8 frames"),
        ("/media/train/0/waveform.json?columns=9", 400, r"columns='9' must be an integer in \[16, 4000\]"),
        ("/media/train/7/spectrogram.png", 422, r"the clip has no audio stream"),
        ("/api/item/12345", 404, r"no row has item_idx 12345"),
        ("/api/filter?where=item_idx%20%3D%3D%3D%201", 400, r"filter failed: .*==="),
        ("/api/filter?where=1%29%3B%20DROP%20TABLE%20x%3B%20SELECT%20%281", 400, r"more than one statement"),
        ("/api/search?q=" + "x" * 201, 400, r"at most 200 characters"),
        # A clause reaching for a file is refused by tali filter's sandbox before it runs
        # (an error message would otherwise echo the file's content).
        (
            "/api/filter?where=" + quote("CAST((SELECT content FROM read_text('/etc/hostname')) AS INT) = 1"),
            400,
            r"^the WHERE clause must be a single boolean expression .*: subqueries are not allowed$",
        ),
        (
            "/api/filter?where=" + quote("item_idx IN (SELECT 1 FROM read_csv('/etc/passwd'))"),
            400,
            r"subqueries are not allowed",
        ),
        ("/static/..%2F..%2Fcatalog.py", 404, r""),
        ("/media/train/0/..%2F..%2F..%2Fetc%2Fpasswd", 404, r"no such page"),
    ],
)
def test_bad_requests_get_a_status_and_a_one_line_message(
    client: TestClient, url: str, status: int, message: str
) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert "\n" not in error and "Traceback" not in error
    assert re.search(message, error), error


def test_the_row_page_route_answers_404_in_html(client: TestClient) -> None:
    response = client.get("/row/train/99")
    assert response.status_code == 404 and "row 99 is out of range" in response.text
    assert client.get("/row/train/0").status_code == 200
    assert client.get("/", follow_redirects=False).headers["location"] == "/row/train/0"


def test_window_is_exactly_what_the_dataset_returns(client: TestClient, sample_root: Path) -> None:
    params = SampleParams(seconds=2.0, start="random", num_frames=5, selection="random", seed=7, epoch=3)
    query = "&".join(f"{k}={v}" for k, v in params.to_query().items())
    dataset = TaliDataset(sample_root, split="train", config=params.config())
    dataset.set_epoch(3)
    for index in (1, 9):
        expected = dataset[index]
        body = client.get(f"/api/window/train/{index}?{query}").json()
        video, audio = expected["youtube_content_video"], expected["youtube_content_audio"]
        assert body["start_seconds"] == expected["window"]["start_seconds"]
        assert [f["pts_seconds"] for f in body["frames"]] == video["pts_seconds"].tolist()
        assert [f["real"] for f in body["frames"]] == video["mask"].tolist()
        for k, url in enumerate(body["frame_urls"]):
            pixels = _png(client.get(url).content)
            assert np.array_equal(pixels, video["frames"][k].permute(1, 2, 0).numpy())
        samples, rate = _wav(client.get(body["audio_url"]).content)
        assert rate == RATE and np.array_equal(samples, audio["waveform"].numpy())
        assert body["subtitles"]["text"] == expected["youtube_subtitle_text"]["text"]


def test_window_frames_and_audio_match_the_ground_truth(
    client: TestClient, truth: dict[int, dict[str, Any]]
) -> None:
    body = client.get("/api/window/train/2?seconds=3&start=10&num_frames=6&selection=uniform").json()
    facts = truth[body["item_idx"]]
    assert body["start_seconds"] == 10.0 and body["duration_seconds"] == 3.0
    codes = [sample_data.read_frame_index(_png(client.get(url).content)) for url in body["frame_urls"]]
    pts = [f["pts_seconds"] for f in body["frames"]]
    assert all(10.0 <= t <= 13.0 for t in pts)
    assert codes == [
        sample_data.expected_frame_code(facts, sample_data.frame_index_at(facts, t)) for t in pts
    ]
    samples, rate = _wav(client.get(body["audio_url"]).content)
    for centre, second in sample_data.tone_seconds(samples, rate, 10.0):
        assert second == sample_data.expected_tone_second(facts, centre)


def test_spectrogram_and_waveform_follow_the_clip_audio(client: TestClient) -> None:
    columns = 300
    image = _png(client.get(f"/media/train/1/spectrogram.png?columns={columns}").content).astype(int)
    assert image.shape == (N_FFT // 2 + 1, columns, 3)
    brightness = image.sum(axis=2)
    for second in (0, 4, 13, 27):
        column = round((second + 0.5) / 30.0 * (columns - 1))
        row = int(np.argmax(brightness[:, column]))
        hz = (image.shape[0] - 1 - row) * RATE / N_FFT  # row 0 is the top: the highest bin
        assert sample_data.second_of_tone(hz) == second
    wave = client.get("/media/train/1/waveform.json?columns=100").json()
    assert wave["missing"] is False and len(wave["max"]) == 100
    assert min(wave["max"][5:95]) > 0.05 and max(wave["min"][5:95]) < -0.05
    silent = client.get("/media/train/10/waveform.json?columns=100").json()  # the "silent" variant
    assert max(abs(v) for v in silent["max"] + silent["min"]) < 1e-3
    assert client.get("/media/train/7/waveform.json").json()["missing"] is True  # no audio stream


def test_row_shows_every_language_the_subtitle_timeline_and_the_image(
    client: TestClient, truth: dict[int, dict[str, Any]]
) -> None:
    for index in (1, 3, 6):
        body = client.get(f"/api/row/train/{index}").json()
        facts = truth[body["item_idx"]]
        assert [lang["language"] for lang in body["wikipedia"]["languages"]] == facts["languages"]
        assert body["youtube"]["start_seconds"] == facts["start_second"]
        lines = body["youtube"]["subtitles"]
        start = facts["start_second"]
        expected = sample_data.expected_subtitle_lines(
            truth=facts, absolute_start=start - 1, absolute_end=start + 30
        )
        assert [line["text"] for line in lines] == expected
        for line in lines:  # "second s" starts at absolute s + 0.5 and lasts until the next line
            s = int(line["text"].split()[1])
            assert math.isclose(line["clip_seconds"], s + 0.5 - start)
        image = _png(client.get(f"/media/train/{index}/image.png").content)
        assert sample_data.read_image_code(image) == body["item_idx"]
    assert client.get("/api/row/train/3").json()["youtube"]["subtitles"] == []  # a null subtitle column


def test_metrics_of_a_row_and_a_filter_over_them(
    client: TestClient, truth: dict[int, dict[str, Any]]
) -> None:
    row = client.get("/api/row/val/0").json()
    assert row["metrics"]["item_idx"] == row["item_idx"]
    assert row["metrics"]["video_fps"] == pytest.approx(truth[row["item_idx"]]["fps"])
    assert client.get("/api/row/train/0").json()["metrics"] is None  # not measured
    kept = client.get("/api/filter", params={"split": "val", "where": "video_width >= 1280"}).json()
    wide = [i for i in range(4) if truth[client.get(f"/api/row/val/{i}").json()["item_idx"]]["width"] >= 1280]
    assert kept["indices"] == wide and kept["read"] == 4


def test_filter_and_search_over_metadata(client: TestClient) -> None:
    even = client.get("/api/filter", params={"split": "train", "where": "item_idx % 2 = 0"}).json()
    assert even["indices"] == [i for i in range(16) if i % 2 == 0] and even["read"] == 16
    assert client.get("/api/filter", params={"where": ""}).json()["kept"] == 16
    first_rows = client.get("/api/filter", params={"where": "row < 2 AND shard LIKE 'train-%'"}).json()
    assert first_rows["indices"] == [0, 1, 8, 9]  # tali filter's columns: the row inside its shard
    hits = client.get("/api/search", params={"split": "train", "q": "Caption 5 EN"}).json()
    assert [h["index"] for h in hits["hits"]] == [5] and hits["total"] == 1
    titles = client.get("/api/search", params={"q": "youtube title 1"}).json()
    assert [h["item_idx"] for h in titles["hits"]] == [1, 10, 11, 12, 13, 14, 15]
    # A quote or a SQL fragment is text to look for, never SQL.
    assert client.get("/api/search", params={"q": "x' OR 1=1 --"}).json()["total"] == 0
    assert client.get("/api/item/17").json() == {"split": "val", "index": 1}


def test_search_connection_sees_metadata_only_and_no_other_file(catalog: Catalog) -> None:
    import duckdb  # the view extra brings it (checked in conftest)

    con = sandboxed_connection(catalog.split("train").files)  # what the viewer searches
    try:
        columns = [r[0] for r in con.execute("DESCRIBE metadata").fetchall()]
        assert "youtube_video_content" not in columns and "image" not in columns
        assert "youtube_title_text" in columns
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(duckdb.Error, match="lock"):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()


def test_a_path_stored_in_a_row_is_never_opened(tmp_path: Path, sample_root: Path) -> None:
    decoy = tmp_path / "decoy.mp4"
    decoy.write_bytes(b"not the row's clip")
    table = pq.read_table(sample_root / "data" / "train-00000-of-00002.parquet")
    column = table.schema.get_field_index("youtube_video_file_path")
    table = table.set_column(column, "youtube_video_file_path", pa.array([str(decoy)] * len(table)))
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "train-00000-of-00001.parquet")
    client = TestClient(create_app(Catalog([tmp_path])), headers={"X-Tali-View": "1"})
    assert client.get("/media/train/0/video.mp4").content == table.column("youtube_video_content")[0].as_py()


def test_server_binds_loopback_and_stops_cleanly(catalog: Catalog) -> None:
    with pytest.raises(TaliConfigError, match="refusing to listen on 0.0.0.0: .* pass --allow-remote"):
        check_host("0.0.0.0", allow_remote=False)
    check_host("0.0.0.0", allow_remote=True)
    check_host("::1", allow_remote=False)
    with ViewerServer(catalog, port=0) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/row/train/0"
        assert httpx.get(server.url).status_code == 200
        # A page on another site reaching this server by DNS rebinding sends its own Host.
        assert httpx.get(server.url, headers={"Host": "attacker.example"}).status_code == 400
        csp = httpx.get(server.url).headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert not server.server.started or server.server.should_exit
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=2)


def test_cli_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sample_root: Path
) -> None:
    garbage = tmp_path / "train-00000-of-00001.parquet"
    garbage.write_bytes(b"this is not parquet")
    cases = [
        (["view", str(tmp_path / "missing")], "no such file or directory"),
        (["view", str(garbage)], "cannot read parquet footer of"),
        (["view", str(sample_root), "--host", "0.0.0.0"], "refusing to listen on 0.0.0.0"),
        (["view", str(sample_root), "--split", "dev"], "split 'dev' is not in the sources"),
        (["view", str(sample_root), "--port", "70000"], "port 70000 is not in 0..65535"),
        (["view", str(sample_root), "--metrics", str(tmp_path / "m.parquet")], "metrics table not found"),
    ]
    for argv, message in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("tali view: error: ") and message in err and "\n" not in err, err
    with ViewerServer(Catalog([sample_root]), port=0) as busy:
        assert main(["view", str(sample_root), "--port", str(busy.port)]) == 1
        assert "pass --port 0 for a free one" in capsys.readouterr().err


def test_a_broken_row_shows_its_errors_and_its_validation_report(broken_root: tuple[Path, Path]) -> None:
    root, report = broken_root
    client = TestClient(create_app(Catalog([root]), report=report), headers={"X-Tali-View": "1"})

    bad_clip = client.get("/api/row/train/0").json()
    assert (
        bad_clip["clip"]["error"].startswith("TaliDecodeError") and "item_idx=0" in bad_clip["clip"]["error"]
    )
    assert [f["check"] for f in bad_clip["validation"]] == ["clip"]
    assert bad_clip["wikipedia"]["languages"][0]["language"] == "en"  # the rest of the row still shows
    for url in ("/api/window/train/0", "/media/train/0/waveform.json"):
        response = client.get(url)
        assert response.status_code == 422 and "item_idx=0" in response.json()["error"]
    bad_yaml = client.get("/api/row/train/1").json()
    assert bad_yaml["youtube"]["subtitle_error"].startswith("TaliSubtitleError")
    assert [f["check"] for f in bad_yaml["validation"]] == ["subtitles"]
    assert client.get("/api/window/train/1").status_code == 422
    assert client.get("/api/row/train/2").json()["validation"] == []
    assert client.get("/api/window/train/2").status_code == 200


def test_cli_prints_its_url_serves_and_stops_on_ctrl_c(sample_root: Path) -> None:
    command = [sys.executable, "-m", "tali.cli.main", "view", str(sample_root), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        assert lines[0].startswith("tali view: serving train (16 rows), val (4 rows), test (4 rows)")
        url = re.search(r"open (http://127\.0\.0\.1:\d+/row/train/0) ", lines[1])
        assert url, lines
        page = httpx.get(url.group(1), timeout=30)
        assert page.status_code == 200 and "/static/viewer.js" in page.text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch, catalog: Catalog) -> None:
    for name in ("starlette", "starlette.applications"):
        monkeypatch.setitem(sys.modules, name, None)  # what an environment without Starlette sees
    with pytest.raises(
        TaliConfigError, match=r"tali view needs the view extra: pip install 'tali-dataset\[view\]'"
    ):
        create_app(catalog)


def test_every_real_world_variant_is_shown_as_the_loader_returns_it(
    client: TestClient, sample_root: Path, truth: dict[int, dict[str, Any]]
) -> None:
    """x264 b-pyramid, edit lists, VFR, rotation, VP9/Opus, AV1, MP3, late and early streams."""
    params = SampleParams(seconds=1.5, start="centre", num_frames=4, seed=1)
    query = "&".join(f"{k}={v}" for k, v in params.to_query().items())
    dataset = TaliDataset(sample_root, split="realworld", config=params.config())
    assert len(dataset) == sum(1 for t in truth.values() if t.get("realworld"))
    for index in range(len(dataset)):
        row = client.get(f"/api/row/realworld/{index}").json()
        facts = truth[row["item_idx"]]
        assert "error" not in row["clip"], (facts["variant"], row["clip"])
        assert row["clip"]["duration_seconds"] == pytest.approx(facts["duration_seconds"], abs=0.1)
        body = client.get(f"/api/window/realworld/{index}?{query}").json()
        expected = dataset[index]
        assert body["start_seconds"] == expected["window"]["start_seconds"], facts["variant"]
        assert [f["pts_seconds"] for f in body["frames"]] == expected["youtube_content_video"][
            "pts_seconds"
        ].tolist()
        last = _png(client.get(body["frame_urls"][-1]).content)
        assert np.array_equal(last, expected["youtube_content_video"]["frames"][-1].permute(1, 2, 0).numpy())


def test_sources_as_files_and_split_folders(tmp_path: Path, sample_root: Path) -> None:
    shards = sorted((sample_root / "data").glob("train-*.parquet"))
    files = Catalog([str(s) for s in shards])  # a list of files: split from the Hub shard names
    assert list(files.splits) == ["train"] and files.split("train").num_rows == 16
    (tmp_path / "data" / "dev").mkdir(parents=True)
    for shard in shards:
        (tmp_path / "data" / "dev" / shard.name).symlink_to(shard)
    folders = Catalog([tmp_path])  # data/{split}/*.parquet
    assert list(folders.splits) == ["dev"] and [s["first"] for s in folders.split("dev").shards()] == [0, 8]
    both = Catalog([sample_root, tmp_path], splits=["dev", "val"])
    assert list(both.splits) == ["dev", "val"] and both.find_item(17) == ("val", 1)


def test_window_errors_use_the_forms_words(client: TestClient) -> None:
    for query, words in (
        ("seconds=100", "seconds=100 is longer than a clip (30 s): type 'whole' in the seconds box"),
        ("start=40", "start at 40 s is past the end of a clip (30 s): choose a start below that"),
    ):
        response = client.get(f"/api/window/train/0?{query}")
        assert response.status_code == 400
        error = response.json()["error"]
        assert error.startswith(words), error
        assert "None" not in error and "WindowConfig" not in error and "nominal_clip_seconds" not in error


def test_a_rotated_clip_shows_its_display_size_and_rotation(
    client: TestClient, truth: dict[int, dict[str, Any]]
) -> None:
    seen = 0
    for index in range(15):
        clip = client.get(f"/api/row/realworld/{index}").json()
        facts = truth[clip["item_idx"]]
        clip = clip["clip"]
        assert (clip["display_width"], clip["display_height"]) == (
            facts["display_width"],
            facts["display_height"],
        )
        assert (clip["width"], clip["height"]) == (facts["width"], facts["height"])  # as stored
        assert clip["rotation"] == (facts.get("rotation") or 0)
        seen += bool(clip["rotation"])
    assert seen == 1  # the sample's one phone clip (rotated90)


def test_two_sources_with_the_same_split_names_keep_their_own_metrics_and_reports(
    sample_root: Path, broken_root: tuple[Path, Path], val_metrics: Path
) -> None:
    root, report = broken_root  # a 3-row "train" whose item_idx 0..2 are also the sample's
    catalog = Catalog([sample_root, root])
    other = f"train@{root.name}"
    assert list(catalog.splits)[:2] == ["train", "val"] and other in catalog.splits
    assert catalog.split("train").num_rows == 16 and catalog.split(other).num_rows == 3
    client = TestClient(
        create_app(catalog, metrics=[val_metrics, None], report=[None, report]), headers={"X-Tali-View": "1"}
    )
    sample_row = client.get("/api/row/train/0").json()
    broken_row = client.get(f"/api/row/{other}/0").json()
    assert sample_row["item_idx"] == broken_row["item_idx"] == 0
    assert sample_row["validation"] is None  # the report is the second source's
    assert [f["check"] for f in broken_row["validation"]] == ["clip"]
    assert client.get("/api/row/val/0").json()["metrics"]["item_idx"] == 16
    assert broken_row["metrics"] is None  # the metrics table is the first source's
    assert Catalog([sample_root, root], splits=["train"]).splits.keys() == {"train", other}


def test_real_tali_shard_names_group_into_their_splits(tmp_path: Path, sample_root: Path) -> None:
    shards = sorted((sample_root / "data").glob("train-*.parquet"))
    named = []
    for k, shard in enumerate(shards):  # the real TALI's naming: a hash after the count
        target = tmp_path / f"train-{k:05d}-of-{len(shards):05d}-e9123a82b71a459{k}.parquet"
        target.symlink_to(shard)
        named.append(str(target))
    catalog = Catalog(named)
    assert list(catalog.splits) == ["train"] and catalog.split("train").num_rows == 16
    (tmp_path / "default" / "val").mkdir(parents=True)  # refs/convert/parquet's layout
    (tmp_path / "default" / "val" / "0000.parquet").symlink_to(
        sample_root / "data" / "val-00000-of-00001.parquet"
    )
    converted = Catalog([str(tmp_path / "default" / "val" / "0000.parquet")])
    assert list(converted.splits) == ["val"] and converted.split("val").num_rows == 4
