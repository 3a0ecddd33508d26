"""The processor benchmark runs and reports every section (numbers themselves are not asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "processors" / "bench_processors.py"


def test_per_sample_section_runs(sample_root, asset_dirs):
    spec = importlib.util.spec_from_file_location("bench_processors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.per_sample(sample_root, str(asset_dirs["clip"]), str(asset_dirs["whisper"]), repeats=1)
    for name in (
        "video_frames",
        "audio_80_30s",
        "audio_128_window",
        "text_subtitles",
        "decode_plus_process_video",
    ):
        assert out[name]["reference"]["median"] > 0 and out[name]["fast"]["median"] > 0, name
        assert out[name]["speedup"] > 0, name
    assert out["video_frames"]["source_resolution"] == [360, 640]
