"""Resume never serves a stale part (parts are keyed on the shard's identity), and two
`validate`/`metrics` runs on one output, as real processes at once, neither crash nor corrupt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tali.cli.main import main
from tali.jobs import part_path, shard_identity
from tali.quality import CheckLimits, validate
from tali.quality.metrics import MetricsOptions, _MetricsShard
from tali.quality.metrics import parts_dir_for as metrics_parts_dir
from tali.quality.validate import _ValidateShard, parts_dir_for

CHEAP = "item_idx,subtitles,start_time,wit,texts"


@pytest.fixture()
def light(sample_root, tmp_path):
    """The 4 val rows with the clip and image columns nulled: every tool runs in a blink."""
    table = pq.read_table(sample_root / "data" / "val-00000-of-00001.parquet")
    for name in ("youtube_video_content", "image"):
        k = table.schema.get_field_index(name)
        table = table.set_column(
            k, table.schema.field(k), pa.nulls(table.num_rows, table.schema.field(k).type)
        )
    root = tmp_path / "light"
    (root / "data").mkdir(parents=True)
    pq.write_table(table, root / "data" / "val-00000-of-00001.parquet", row_group_size=2)
    return root


def _rewrite_with_a_bad_subtitle(shard: Path) -> None:
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[0]["youtube_subtitle_text"] = "[not, a, mapping]"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard, row_group_size=2)


def test_a_changed_shard_is_recomputed_not_served_from_its_old_part(light, tmp_path):
    shard = light / "data" / "val-00000-of-00001.parquet"
    out = tmp_path / "report.json"
    checks = ("subtitles",)
    old = part_path(parts_dir_for(out, checks, CheckLimits()), str(shard), ".json")
    old.parent.mkdir(parents=True)
    _ValidateShard(checks, CheckLimits())(str(shard), old)  # an interrupted run finished this shard...
    assert json.loads(old.read_text())["failures"] == []
    _rewrite_with_a_bad_subtitle(shard)  # ...then the shard was replaced
    report = validate(light, split="val", checks=checks, report=out)
    assert not report.ok and [f.row for f in report.failures] == [0]
    assert part_path(parts_dir_for(out, checks, CheckLimits()), str(shard), ".json") != old
    # the same through the CLI exit code, with metrics too
    metrics_out = tmp_path / "m.parquet"
    part = part_path(metrics_parts_dir(metrics_out, MetricsOptions()), str(shard), ".parquet")
    part.parent.mkdir(parents=True)
    pristine = tmp_path / "pristine.parquet"
    table = pq.read_table(shard)
    rows = table.to_pylist()
    rows[0]["youtube_subtitle_text"] = "{}"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), pristine)
    _MetricsShard(MetricsOptions())(str(pristine), part)  # a part from other content, planted
    os.replace(part, part_path(part.parent, str(shard), ".parquet"))
    _rewrite_with_a_bad_subtitle(shard)
    assert main(["metrics", str(light), "--split", "val", "--out", str(metrics_out), "--no-progress"]) == 0
    errors = pq.read_table(metrics_out, columns=["errors"]).column(0).to_pylist()
    assert any("youtube_subtitle_text" in e for e in errors[0])


def test_identity_sees_a_footer_change_that_keeps_size_and_mtime(light):
    shard = light / "data" / "val-00000-of-00001.parquet"
    before = shard_identity(str(shard))
    st = shard.stat()
    data = bytearray(shard.read_bytes())
    footer_len = int.from_bytes(data[-8:-4], "little")
    data[-8 - footer_len // 2] ^= 0xFF  # one byte inside the footer
    shard.write_bytes(bytes(data))
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert shard.stat().st_size == st.st_size and shard.stat().st_mtime_ns == st.st_mtime_ns
    assert shard_identity(str(shard)) != before
    assert shard_identity(str(light / "missing.parquet")) == "unreadable"


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    cmd = [sys.executable, "-m", "tali.cli.main", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture()
def bulky(light, tmp_path):
    """400 light rows in 2 shards: runs long enough (a few seconds) for two to overlap."""
    table = pq.read_table(light / "data" / "val-00000-of-00001.parquet")
    root = tmp_path / "bulky"
    (root / "data").mkdir(parents=True)
    for s in range(2):
        rows = []
        for k in range(50):
            for r in table.to_pylist():
                rows.append({**r, "item_idx": 1000 * s + 4 * k + r["item_idx"] - 16})
        pq.write_table(
            pa.Table.from_pylist(rows, schema=table.schema), root / "data" / f"val-{s:05d}-of-00002.parquet"
        )
    return root


def test_two_concurrent_runs_on_one_output_take_turns(bulky, tmp_path):
    light = bulky
    report = tmp_path / "r.json"
    metrics = tmp_path / "m.parquet"
    procs = [_cli("validate", str(light), "--report", str(report), "--checks", CHEAP, "--no-progress")]
    procs.append(_cli("validate", str(light), "--report", str(report), "--checks", CHEAP, "--no-progress"))
    procs += [_cli("metrics", str(light), "--out", str(metrics), "--no-progress") for _ in range(2)]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    for code, _, err in results:
        assert code == 0 and "Traceback" not in err, err
    blob = json.loads(report.read_text())
    assert blob["summary"]["rows"] == 400 and blob["failures"] == []
    ids = list(range(200)) + list(range(1000, 1200))
    assert pq.read_table(metrics).column("item_idx").to_pylist() == ids
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".parts") or ".partial" in p.name]
    assert leftovers == []
