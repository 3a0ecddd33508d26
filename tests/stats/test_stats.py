"""`tali stats` against the sample data's ground truth: every number is recomputed from
the truth file or the rows themselves, never hard-coded."""

from __future__ import annotations

import base64
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

import tali
from tali.cli.main import main as cli_main
from tali.decode.subtitles import parse_subtitles
from tali.errors import TaliConfigError, TaliSourceError
from tali.quality.metrics import compute_metrics
from tali.stats import StatsOptions, describe, write_outputs
from tali.stats.sql import connect, create_features, features_sql
from tali.text import caption as caption_of
from tali.text import read_wit


@pytest.fixture(scope="module")
def train_report(sample_root):
    return describe(sample_root, split="train")


@pytest.fixture(scope="module")
def val_metrics(sample_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stats-metrics") / "val-metrics.parquet"
    compute_metrics(sample_root, split="val", out=out, workers=1, progress=False)
    return out


def _split_truth(truth, split):
    return [t for t in truth.values() if t["split"] == split]


def test_languages_and_text_lengths_match_truth(train_report, truth, rows):
    items = _split_truth(truth, "train")
    assert train_report.rows == len(items) == 16 and train_report.shards == 2
    languages = Counter(lang for t in items for lang in t["languages"])
    top = dict(train_report.categorical["language"].top)
    assert top == dict(languages) and train_report.categorical["language"].total == sum(languages.values())
    per_row = Counter(str(len(t["languages"])) for t in items)
    assert dict(train_report.categorical["languages_per_row"].top) == dict(per_row)
    description = np.array([len(rows[t["item_idx"]]["youtube_description_text"]) for t in items], float)
    summary = train_report.numeric["youtube_description_chars"]
    assert summary.mean == pytest.approx(description.mean())
    assert summary.quantiles["p50"] == pytest.approx(np.quantile(description, 0.5))
    captions = [
        len(caption_of(read_wit(rows[t["item_idx"]]["wit_features"]), k))
        for t in items
        for k in range(len(t["languages"]))
    ]
    caption = train_report.numeric["caption_chars"]
    assert caption.per == "language entry" and caption.count == len(captions)
    assert caption.mean == pytest.approx(np.mean(captions)) and caption.max == max(captions)


def test_start_times_clip_sizes_and_histograms(train_report, truth):
    items = _split_truth(truth, "train")
    starts = np.array([t["start_second"] for t in items], float)
    s = train_report.numeric["start_seconds"]
    for name, q in (("p5", 0.05), ("p25", 0.25), ("p75", 0.75), ("p95", 0.95)):
        assert s.quantiles[name] == pytest.approx(np.quantile(starts, q))  # quantile_cont = linear
    assert sum(s.histogram.counts) == len(items) and len(s.histogram.counts) == 30
    edges = np.array(s.histogram.edges)
    expected, _ = np.histogram(starts, bins=edges)
    assert s.histogram.counts == expected.tolist()
    sizes = [t["clip_bytes"] for t in items]
    assert train_report.numeric["clip_bytes"].max == max(sizes)
    top = train_report.top_rows["clip_bytes"]
    assert [r["value"] for r in top] == sorted(sizes, reverse=True)[:10]
    assert all(truth[r["item_idx"]]["clip_bytes"] == r["value"] for r in top)
    zero = sum(1 for t in items if t["start_second"] == 0)
    assert dict(train_report.categorical["start_time"].top)["zero"] == zero
    # Small integer ranges get unit bins centred on the integers.
    languages = train_report.numeric["num_languages"]
    assert languages.histogram.edges[0] == 0.5 and len(languages.histogram.counts) == 3


def test_subtitle_counts_equal_the_yaml_parser_on_every_row(sample_root, rows, real_rows):
    shards = sorted(str(p) for p in (sample_root / "data").glob("*.parquet"))
    con = connect(1)
    create_features(con, shards, clip_seconds=30.0, metrics_view=None)
    got = dict(con.execute("SELECT item_idx, subtitle_lines_total FROM features").fetchall())
    rows = {**rows, **real_rows}  # every split, the realworld one too
    assert len(got) == len(rows) >= 39
    for item_idx, row in rows.items():
        text = row["youtube_subtitle_text"]
        assert got[item_idx] == (None if text is None else len(parse_subtitles(text)))


def test_subtitle_counting_on_tricky_yaml(tmp_path):
    """What yaml.safe_dump writes for real subtitles: float keys, long wrapped lines,
    list values, quotes and colons inside text, multi-line text."""
    docs = [
        {0.0: "plain", 3.25: "a: colon inside", 7.5: "long " * 40, 12.0: ["list", "value"]},
        {"1.5": "quoted key", "2e1": "exponent", 30.0: "line one\n12: not a key\nline three"},
        {5: "int key", 6.5: "'quoted' \"text\"", 9.0: None},
    ]
    texts = [yaml.safe_dump(d, allow_unicode=True, width=60, sort_keys=False) for d in docs]
    rows = [
        {**dict.fromkeys(tali.TALI_SCHEMA.names), "item_idx": i, "youtube_subtitle_text": t}
        for i, t in enumerate(texts)
    ]
    path = tmp_path / "data" / "train-00000-of-00001.parquet"
    path.parent.mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=tali.TALI_SCHEMA), path)
    con = connect(1)
    create_features(con, [str(path)], clip_seconds=30.0, metrics_view=None)
    got = dict(con.execute("SELECT item_idx, subtitle_lines_total FROM features").fetchall())
    assert got == {i: len(parse_subtitles(t)) for i, t in enumerate(texts)}
    assert got == {0: 4, 1: 3, 2: 3}


def test_subtitle_lines_per_clip_second(train_report, truth):
    items = _split_truth(truth, "train")
    with_lines = sum(1 for t in items if t["subtitle_kind"] in ("lines", "list_values"))
    profile = train_report.subtitles_by_second
    # Lines sit at absolute second s + 0.5: one in each of the clip's 30 seconds.
    assert profile["seconds"] == list(range(30))
    assert profile["lines"] == [with_lines] * 30
    parsed = sum(1 for t in items if t["subtitle_kind"] != "null")
    assert profile["rows"] == parsed and profile["mean_lines"][0] == pytest.approx(with_lines / parsed)
    in_clip = train_report.numeric["subtitle_lines_in_clip"]
    assert in_clip.nulls == sum(1 for t in items if t["subtitle_kind"] == "null")
    assert in_clip.max == 30


def test_video_bytes_are_never_read(sample_root):
    """DuckDB's plan projects metadata columns only."""
    shards = sorted(str(p) for p in (sample_root / "data").glob("train-*.parquet"))
    con = connect(1)
    plan = "\n".join(
        r[1]
        for r in con.execute(
            "EXPLAIN " + features_sql(shards, clip_seconds=30.0, metrics_view=None)
        ).fetchall()
    )
    assert "READ_PARQUET" in plan and "Projections" in plan and "youtube_subtitle_text" in plan
    assert "youtube_video_content" not in plan and '"image"' not in plan and "image_url" not in plan


def test_metrics_summaries_and_correlations(sample_root, val_metrics):
    report = describe(sample_root, split="val", metrics=val_metrics)
    table = pq.read_table(val_metrics).to_pylist()
    durations = np.array([r["video_duration_seconds"] for r in table], float)
    assert report.numeric["video_duration_seconds"].mean == pytest.approx(durations.mean())
    resolutions = Counter(f"{r['video_width']}x{r['video_height']}" for r in table)
    assert dict(report.categorical["resolution"].top) == dict(resolutions)
    dbfs = [r["audio_rms_dbfs"] for r in table]
    loud = report.numeric["audio_rms_dbfs"]
    assert loud.nulls == sum(v is None for v in dbfs)
    assert loud.nonfinite == sum(v is not None and not np.isfinite(v) for v in dbfs)
    corr = report.correlations
    names, matrix = corr["columns"], np.array(corr["matrix"], dtype=float)
    assert np.allclose(matrix, matrix.T, equal_nan=True) and np.allclose(np.diag(matrix), 1)
    measured = [n for n in names if n in table[0]]
    assert len(measured) >= 3
    checked = 0
    for a in measured:
        for b in measured[measured.index(a) + 1 :]:
            x, y = (np.array([np.nan if r[c] is None else r[c] for r in table], float) for c in (a, b))
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() >= 2 and x[ok].std() > 0 and y[ok].std() > 0:
                r = matrix[names.index(a), names.index(b)]
                assert r == pytest.approx(np.corrcoef(x[ok], y[ok])[0, 1]), (a, b)
                checked += 1
    assert checked >= 3
    strongest = report.strongest_correlations(5)
    assert len(strongest) == 5 and all(abs(strongest[0][2]) >= abs(r) for *_, r in strongest)
    a, b, r = strongest[0]
    assert matrix[names.index(a), names.index(b)] == r
    # Subtitle lines inside the clip use the measured duration: lines at s + 0.5 for s < duration.
    by_item = {r["item_idx"]: r for r in table}
    assert report.numeric["subtitle_lines_in_clip"].max == max(
        r["subtitle_lines"] for r in by_item.values() if r["subtitle_lines"] is not None
    )


def test_outputs_png_json_and_self_contained_html(train_report, tmp_path):
    written = write_outputs(train_report, tmp_path / "out", html=True)
    blob = json.loads(written["json"].read_text())
    assert (
        blob["rows"] == 16 and blob["numeric"]["clip_bytes"]["max"] == train_report.numeric["clip_bytes"].max
    )
    pngs = {k: p for k, p in written.items() if p.suffix == ".png"}
    assert {"text", "clip", "subtitles", "languages", "subtitles_by_second"} <= set(pngs)
    for path in pngs.values():
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 300
            assert len(set(np.asarray(image.convert("L")).ravel().tolist())) > 10  # something is drawn
    page = written["html"].read_text()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == len(pngs)
    assert base64.b64decode(embedded[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch
    Image.open(io.BytesIO(base64.b64decode(embedded[-1]))).verify()


def test_bad_inputs_raise_typed_errors(sample_root, tmp_path):
    with pytest.raises(TaliSourceError, match="no such file"):
        describe(tmp_path / "missing")
    with pytest.raises(TaliSourceError, match="split 'nope'"):
        describe(sample_root, split="nope")
    with pytest.raises(TaliSourceError, match="metrics table not found"):
        describe(sample_root, split="val", metrics=tmp_path / "m.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(TaliSourceError, match="cannot read the shards"):
        describe(junk)
    with pytest.raises(TaliConfigError, match="bins must be"):
        StatsOptions(bins=0)
    with pytest.raises(TaliConfigError, match="top_k"):
        StatsOptions(top_k=0)


def test_cli_json_to_stdout_and_one_line_errors(sample_root, tmp_path, capsys):
    assert cli_main(["stats", str(sample_root), "--split", "val", "--json", "-"]) == 0
    out = capsys.readouterr()
    blob = json.loads(out.out)
    assert blob["rows"] == 4 and blob["split"] == "val"
    assert cli_main(["stats", str(sample_root), "--split", "val", "--html"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "tali stats: error: --html writes DIR/report.html: give --out DIR as well"
    assert cli_main(["stats", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such file or directory" in err[0]
    code = cli_main(["stats", str(sample_root), "--split", "val", "--out", str(tmp_path / "o"), "--html"])
    assert code == 0 and (tmp_path / "o" / "report.html").is_file()
    assert "numeric columns" in capsys.readouterr().out
