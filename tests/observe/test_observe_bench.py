"""``tali bench`` and the benchmark suite: the peers decode the very frames tali
decodes (read back from the pixels), and the suite runs end to end on real rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tali import AudioConfig, TaliConfig, TaliDataset, sample_data
from tali.cli.main import main
from tali.sample_data import frames_to_decode

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: benchmarks/

from benchmarks.suite.baselines import FloorDataset, NaiveDataset, OutputFloorDataset
from benchmarks.suite.peers import HFStreamingPeer, TorchCodecPeer, plans_from_tali

AV = TaliConfig(
    modalities=("youtube_content_video", "youtube_content_audio"),
    seed=5,
    audio=AudioConfig(on_missing="zeros"),
)


def _indices(frames) -> list[int]:
    return [sample_data.read_frame_index(f.permute(1, 2, 0).numpy()) for f in frames]


def test_peers_decode_the_frames_tali_decodes(root, truth):
    tali_ds = TaliDataset(root, split="val", config=AV)
    plans = plans_from_tali(tali_ds)
    torchcodec = TorchCodecPeer(tali_ds.files, plans, AV)
    naive, floor = NaiveDataset(tali_ds.files, plans, AV), FloorDataset(tali_ds.files, plans, AV)
    output_floor = OutputFloorDataset(tali_ds.files, plans, AV)
    hf = {s["item_idx"]: s for s in HFStreamingPeer(tali_ds.files, plans, AV)}
    assert sorted(hf) == [16, 17, 18, 19] and len(torchcodec) == 4
    for i in range(len(tali_ds)):
        ours, theirs = tali_ds[i], torchcodec[i]
        item = ours["item_idx"]
        assert theirs["item_idx"] == item
        expected = _indices(ours["youtube_content_video"]["frames"])
        # tali's frame indices are the truth's: frame k is shown at k / fps.
        pts = ours["youtube_content_video"]["pts_seconds"].tolist()
        assert expected == [round(t * truth[item]["fps"]) for t in pts]
        assert _indices(theirs["frames"]) == expected
        assert _indices(hf[item]["frames"]) == expected
        if i < 2:  # the naive loader decodes whole clips: slow, two rows suffice
            assert _indices(naive[i]["frames"]) == expected
        # The floor decodes each wanted frame's GOP from its keyframe up to the frame,
        # and one packet past each run of them (a 3 s window: at most 3 GOPs).
        needed, runs = frames_to_decode(truth[item], expected)
        assert len(needed) <= floor[i]["frames_decoded"] <= len(needed) + runs
        # The output floor returns the same frames and as many samples, decoding as
        # many packets as the floor (its ratio to a peer bounds tali's).
        bound = output_floor[i]
        assert _indices(bound["frames"]) == expected
        for peer in (theirs, hf[item], bound):
            assert peer["frames"].shape == ours["youtube_content_video"]["frames"].shape
            assert peer["waveform"].shape == ours["youtube_content_audio"]["waveform"].shape


def test_run_all_smoke(tmp_path, capsys):
    from benchmarks import run_all

    plot = tmp_path / "scaling.png"
    code = run_all.main(
        [
            "--split",
            "val",
            "--rounds",
            "1",
            "--epochs",
            "2",
            "--workers",
            "1",
            "--only",
            "tali_default",
            "tali_av",
            "torchcodec_av",
            "floor_av",
            "output_floor_av",
            "--window-seconds",
            "1",
            "--frames",
            "1",
            "--sizes",
            "112",
            "--plot",
            str(plot),
            "--quiet",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    names = [(c["name"], c["workers"]) for c in out["cases"]]
    assert ("tali_default", 1) in names and ("torchcodec_av", 1) in names
    assert {c["knob"] for c in out["cases"] if c["group"] == "scaling"} == {
        "window_seconds",
        "num_frames",
        "size",
    }
    assert [c["workers"] for c in out["cases"] if c["name"] == "floor_av"] == [1]
    assert [c["workers"] for c in out["cases"] if c["name"] == "output_floor_av"] == [1]
    for case in out["cases"]:
        # 4 rows x 2 epochs in batches of 4; the first batch (worker start-up) is not timed.
        assert case["samples"] == 4 and case["samples_per_second"] > 0 and case["peak_rss_mib"] > 50
        assert case["cpu_ms_per_sample"] > 0
    ratio = out["goals"]["av_vs_best_peer"]["ratio"]
    tali_av = next(c["samples_per_second"] for c in out["cases"] if c["name"] == "tali_av")
    peer = next(c["samples_per_second"] for c in out["cases"] if c["name"] == "torchcodec_av")
    assert ratio == pytest.approx(tali_av / peer) and out["goals"]["best_peer"] == "torchcodec_av"
    # The bound on that ratio: the output floor against the same peer, reported beside the goals.
    bound = next(c["samples_per_second"] for c in out["cases"] if c["name"] == "output_floor_av")
    assert out["goals"]["bound_av_vs_best_peer"]["ratio"] == pytest.approx(bound / peer)
    assert out["goals"]["bound_av_vs_best_peer"]["met"] is None
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "goals (ratios measured in this run)" in captured.err


def test_cli_bench_json(root, capsys):
    code = main(
        [
            "bench",
            root,
            "--split",
            "val",
            "--epochs",
            "1",
            "--workers",
            "0",
            "--json",
            "--modalities",
            "youtube_title_text,wikipedia_caption_image",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    result = out["results"][0]
    assert out["rows"] == 4 and result["samples"] == 4 and result["samples_per_second"] > 0
    assert result["first_batch_seconds"] > 0 and result["steady_samples_per_second"] >= 0
    assert result["stages"]["image_decode"]["calls"] == 4 and result["stages"]["video_decode"]["calls"] == 0
    assert result["busiest_stage"] in ("image_decode", "read", "collate")

    # The table of the same results fits a default 80-column terminal: no header or
    # value is wrapped or cut.
    from rich.console import Console

    from tali.cli.bench import _COLUMNS, results_table

    console = Console(width=80, record=True)
    console.print(results_table(out["results"] * 2, "tali bench"))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "samples/s" in line)
    assert " ".join(header.split()) == " ".join(_COLUMNS)
    row = next(line for line in lines if result["busiest_stage"] in line)
    assert row.split()[:2] == ["0", f"{result['samples_per_second']:.1f}"]


def test_cli_bench_rejects_bad_arguments(root, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", root, "--split", "val", "--workers", "-1"])
    assert exit_info.value.code == 2
    assert "argument --workers: must be an integer >= 0, got -1" in capsys.readouterr().err
