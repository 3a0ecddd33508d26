"""Prometheus export (textfile and a real /metrics endpoint on loopback, parsed with
prometheus_client's own parser), the rich panel, and ``tali demo --monitor``."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from tali import TaliConfig, TaliDataset, make_loader
from tali.cli.main import main
from tali.observe import Monitor
from tali.observe.panel import render
from tali.observe.prometheus import serve, write_textfile


def _values(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture(scope="module")
def monitored(broken_root, config) -> Monitor:
    ds = TaliDataset(broken_root, split="val", config=config, collect_stats=True, on_error="skip")
    monitor = Monitor(interval_seconds=0.05)
    with monitor:
        for _ in monitor.watch(make_loader(ds, batch_size=2, num_workers=0)):
            pass
    return monitor


def test_textfile_matches_the_snapshot(monitored, tmp_path):
    snap = monitored.snapshot()
    path = write_textfile(monitored, tmp_path / "tali.prom")
    values = _values(path.read_text())
    assert values[("tali_samples_total", ())] == snap.samples == 4
    assert values[("tali_batches_total", ())] == 2
    assert values[("tali_read_bytes_total", ())] == snap.bytes_read
    # 3 timed video stages (packet index, window frames, random frame) per attempt that got
    # past opening: items 16, 18, 19, 19, 19 (17 fails to open; 18 fails on its image after its
    # clip was decoded, once: the request for item 18 itself finds it known bad, no new decode).
    assert values[("tali_stage_calls_total", (("stage", "video_decode"),))] == 15
    assert values[("tali_stage_seconds_total", (("stage", "read"),))] == pytest.approx(
        snap.stages["read"]["seconds"]
    )
    assert values[("tali_rows_skipped_total", (("error", "TaliImageError"),))] == 1
    assert values[("tali_rows_skipped_total", (("error", "TaliDecodeError"),))] == 1
    main_rss = [
        v
        for (name, labels), v in values.items()
        if name == "tali_process_rss_bytes" and ("role", "main") in labels
    ]
    assert len(main_rss) == 1 and main_rss[0] > 0


def test_http_endpoint_serves_live_values(root, tmp_path):
    config = TaliConfig(modalities=("youtube_title_text",))
    ds = TaliDataset(root, split="val", config=config, collect_stats=True)
    monitor = Monitor(resources=False)
    server, port = serve(monitor, 0)
    try:
        before = _values(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        )
        for _ in monitor.watch(make_loader(ds, batch_size=1, num_workers=0)):
            pass
        after = _values(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        )
    finally:
        server.shutdown()
    assert before[("tali_samples_total", ())] == 0
    assert after[("tali_samples_total", ())] == 4
    assert after[("tali_stage_calls_total", (("stage", "read"),))] == 4
    assert after[("tali_samples_per_second", ())] > 0


def test_panel_shows_stages_workers_and_errors(monitored):
    console = Console(record=True, width=140)
    console.print(render(monitored.snapshot()))
    text = console.export_text()
    assert "4 samples" in text and "video_decode" in text and "samples/s" in text
    assert "2 rows skipped" in text and "TaliImageError: 1" in text
    assert "processors" not in text  # stages that never ran are left out


def test_demo_monitor_writes_prometheus_file(tmp_path, root, capsys):
    out = tmp_path / "demo.prom"
    code = main(
        [
            "demo",
            "--source",
            root,
            "--split",
            "val",
            "--monitor",
            "--epochs",
            "1",
            "--workers",
            "0",
            "--batch-size",
            "2",
            "--prometheus-file",
            str(out),
        ]
    )
    assert code == 0
    values = _values(out.read_text())
    assert values[("tali_samples_total", ())] == 4
    assert values[("tali_stage_calls_total", (("stage", "audio_decode"),))] == 4  # every val clip has audio
    assert "video_decode" in capsys.readouterr().out


def test_rank_label_on_every_sample(monitored, tmp_path, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    plain = _values(write_textfile(monitored, tmp_path / "none.prom").read_text())
    assert all("rank" not in dict(labels) for _, labels in plain)
    explicit = _values(write_textfile(monitored, tmp_path / "r3.prom", rank=3).read_text())
    monkeypatch.setenv("RANK", "1")  # what torchrun sets; used when no process group is initialised
    auto = _values(write_textfile(monitored, tmp_path / "auto.prom").read_text())
    for values, rank in ((explicit, "3"), (auto, "1")):
        assert len(values) == len(plain)
        assert all(dict(labels).get("rank") == rank for _, labels in values)
        assert values[("tali_samples_total", (("rank", rank),))] == 4
