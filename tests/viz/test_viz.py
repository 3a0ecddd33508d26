"""tali.viz and `tali show`: what is drawn is the sample's content, read back from the
figure's artists (frame codes, image codes, window span, subtitle positions)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import tali
from tali import sample_data
from tali.cli.main import main as cli_main
from tali.errors import TaliConfigError
from tali.viz import VIEW_CONFIG, batch_element, contact_sheet, parse_rows, plot_sample


@pytest.fixture(scope="module")
def ds(sample_root):
    return tali.TaliDataset(sample_root, split="train", config=VIEW_CONFIG)


def _artists(figure, kind, gid):
    found = []
    for ax in figure.axes:
        for artist in getattr(ax, kind):
            if artist.get_gid() == gid or (gid.endswith(":") and str(artist.get_gid()).startswith(gid)):
                found.append((ax, artist))
    return found


def _rendered(figure):
    """The figure as the PNG it writes, and each image artist's pixels cut out of that PNG."""
    import io

    from tali.viz import png_bytes

    data = png_bytes(figure, dpi=figure.dpi)  # same dpi: the PNG has the canvas's pixel geometry
    png = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    height = png.shape[0]
    crops = {}
    for ax in figure.axes:
        for image in ax.images:
            box = image.get_window_extent()  # display pixels, origin bottom left
            rows = slice(int(np.ceil(height - box.y1)), int(np.floor(height - box.y0)))
            cols = slice(int(np.ceil(box.x0)), int(np.floor(box.x1)))
            crops[image] = png[rows, cols]
    return crops


def _expected_code(truth_row, pts):
    return sample_data.expected_frame_code(truth_row, sample_data.frame_index_at(truth_row, float(pts)))


@pytest.mark.parametrize("index", [1, 7])  # 7: the clip without an audio stream
def test_sample_figure_shows_the_samples_frames_window_subtitles_and_image(ds, truth, index):
    sample, row = ds[index], ds.read_row(index)
    t = truth[sample["item_idx"]]
    figure = plot_sample(sample, row=row)
    frames = _artists(figure, "images", "frame")
    video = sample["youtube_content_video"]
    assert len(frames) == VIEW_CONFIG.video.num_frames
    pixels = _rendered(figure)
    checked = 0
    for k, (ax, artist) in enumerate(frames):
        shown = np.asarray(artist.get_array())
        assert np.array_equal(shown, video["frames"][k].permute(1, 2, 0).numpy())
        expected = _expected_code(t, video["pts_seconds"][k])
        if expected is not None and video["mask"][k]:
            assert sample_data.read_frame_index(shown) == expected
            assert sample_data.read_frame_index(pixels[artist]) == expected  # and the PNG shows it
            checked += 1
        assert ax.get_title() == f"{float(video['pts_seconds'][k]):.2f} s"
    assert checked >= 4
    t0 = sample["window"]["start_seconds"]
    d = sample["window"]["duration_seconds"]
    spans = _artists(figure, "patches", "window")
    assert len(spans) == 3  # waveform, log-mel, subtitles
    for _, span in spans:
        assert span.get_x() == pytest.approx(t0) and span.get_width() == pytest.approx(d)
    texts = _artists(figure, "texts", "subtitle")
    start = t["start_second"]
    drawn = {artist.get_text(): artist.get_position()[0] for _, artist in texts}
    whole = sample_data.expected_subtitle_lines(t, start, start + t["duration_seconds"])
    assert sorted(drawn) == sorted(whole)
    for text, x in drawn.items():
        assert x == pytest.approx(int(text.split()[1]) + 0.5 - start)
    bold = sorted(a.get_text() for _, a in texts if a.get_fontweight() == "bold")
    assert bold == sorted(sample_data.expected_subtitle_lines(t, start + t0, start + t0 + d))
    ((_, image),) = _artists(figure, "images", "wikipedia_image")
    assert sample_data.read_image_code(np.asarray(image.get_array())) == sample["item_idx"]
    caption = sample["wikipedia_caption_text"]
    assert any(f"[{caption['language']}] {caption['text']}" in ax.get_title() for ax in figure.axes)
    waves = _artists(figure, "lines", "waveform")
    if t["has_audio"]:
        ((_, wave),) = waves
        assert wave.get_xdata()[0] == 0 and wave.get_xdata()[-1] == pytest.approx(
            t["duration_seconds"], abs=0.05
        )
        ((_, mel),) = _artists(figure, "images", "log_mel")
        assert mel.get_array().shape[0] == 80
    else:
        # No stream: the figure shows the window's zeros from the loader.
        ((_, wave),) = waves
        assert wave.get_xdata()[0] == pytest.approx(t0) and not np.any(wave.get_ydata())


def test_batch_element_plots_without_the_row(ds):
    batch = tali.collate([ds[2], ds[3]])
    element = batch_element(batch, 1)
    assert element["item_idx"] == 3 and element["youtube_content_video"]["frames"].shape[0] == 6
    figure = plot_sample(element)
    frames = _artists(figure, "images", "frame")
    direct = ds[3]["youtube_content_video"]["frames"]
    assert [sample_data.read_frame_index(np.asarray(a.get_array())) for _, a in frames] == [
        sample_data.read_frame_index(f.permute(1, 2, 0).numpy()) for f in direct
    ]
    ((ax, span),) = _artists(figure, "patches", "window")[:1]
    assert span.get_x() == pytest.approx(element["window"]["start_seconds"])
    assert ax.get_xlim() == pytest.approx(
        (element["window"]["start_seconds"], element["window"]["start_seconds"] + 3.0)
    )


def test_contact_sheet_rows_hold_their_own_frames_and_images(ds, truth):
    rows = [0, 5, 9]
    figure = contact_sheet(ds, rows)
    pixels = _rendered(figure)  # what the PNG shows, not just what the artists hold
    checked = 0
    for index in rows:
        sample = ds[index]
        t = truth[sample["item_idx"]]
        ((_, image),) = _artists(figure, "images", f"wikipedia_image:{index}")
        assert sample_data.read_image_code(np.asarray(image.get_array())) == sample["item_idx"]
        assert sample_data.read_image_code(pixels[image]) == sample["item_idx"]
        frames = _artists(figure, "images", f"frame:{index}:")
        assert len(frames) == VIEW_CONFIG.video.num_frames
        video = sample["youtube_content_video"]
        for k, (_, artist) in enumerate(frames):
            expected = _expected_code(t, video["pts_seconds"][k])
            if expected is not None:
                assert sample_data.read_frame_index(np.asarray(artist.get_array())) == expected
                assert sample_data.read_frame_index(pixels[artist]) == expected
                checked += 1
    assert checked >= 12


def test_parse_rows():
    assert parse_rows("0,3,5", 8) == [0, 3, 5]
    assert parse_rows("2-4,7", 8) == [2, 3, 4, 7]
    with pytest.raises(TaliConfigError, match="out of range: the split has 8 rows"):
        parse_rows("8", 8)
    with pytest.raises(TaliConfigError, match="use indices like"):
        parse_rows("4-2", 8)
    with pytest.raises(TaliConfigError, match="use indices like"):
        parse_rows("-1", 8)


def test_cli_show_writes_a_sheet_and_a_detail_png(sample_root, tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    args = ["show", str(sample_root), "--split", "val", "--rows", "0-1", "--frames", "3", "--out", str(sheet)]
    assert cli_main(args) == 0
    with Image.open(sheet) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 100
        assert len(np.unique(np.asarray(image.convert("L")))) > 20
    detail = tmp_path / "row.png"
    assert (
        cli_main(
            ["show", str(sample_root), "--split", "val", "--rows", "1", "--detail", "--out", str(detail)]
        )
        == 0
    )
    with Image.open(detail) as image:
        assert image.size == (1200, 900)
    capsys.readouterr()
    assert cli_main(["show", str(sample_root), "--split", "val", "--rows", "9", "--out", str(sheet)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tali show: error: row 9 is out of range: the split has 4 rows (0..3)"]
    assert cli_main(["show", str(sample_root), "--out", str(tmp_path / "x.jpg")]) == 1
    assert "give a .png path" in capsys.readouterr().err
