"""No hostile row stalls or exhausts a worker: the per-row memory budget, measured.

Every class of issue 14.A at full size and default limits (an 8000x8000 16-bit PNG,
a 1 x 10 M PNG, a JPEG of 20,000 scans, EPS, a 1.6 MB YAML alias fan-out, a 1 MB
scalar aliased by 3,000 lines, 4.4 MB of emoji, a 200 k-entry edit list, frames
larger than their sample entry says, a codec TALI never uses, a 100 MB clip blob)
goes through both loaders under ``raise`` and ``skip``, with DataLoader workers,
in a fresh process. Peak RSS is read from the kernel (``VmHWM`` of the process,
reset after a warm-up row; ``ru_maxrss`` of its reaped workers) and must stay within ``ROW_MEMORY_BUDGET_BYTES`` of
what the process held before; each row must finish in bounded time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import tali
from tali.limits import ROW_MEMORY_BUDGET_BYTES
from tali.quality.mutate import (
    _EPS,
    Mutant,
    _claim_samples,
    _mpeg4_clip,
    _pad,
    aspect_bomb,
    edit_list_bomb,
    frame_size_lie,
    jpeg_scan_bomb,
    mutants_to_table,
    png16,
)

#: A hang guard per row (the loaders' own limits are 30 s per clip, 10 s per image).
ROW_SECONDS = 45.0

_V, _IMG, _SUB = "youtube_video_content", "image", "youtube_subtitle_text"


def _hostile(base: dict) -> list[tuple[str, str, object]]:
    """(kind, column, value) at full size, against the default limits."""
    clip = base[_V]
    return [
        ("image.png16_8000", _IMG, {"bytes": png16(8000, 8000), "path": None}),
        ("image.aspect_1x10M", _IMG, {"bytes": aspect_bomb(1, 10_000_000), "path": None}),
        ("image.aspect_1x40k", _IMG, {"bytes": aspect_bomb(1, 40_000), "path": None}),
        ("image.jpeg_20k_scans", _IMG, {"bytes": jpeg_scan_bomb(20_000, 512), "path": None}),
        ("image.eps", _IMG, {"bytes": _EPS, "path": None}),
        (
            "subtitles.alias_fanout",
            _SUB,
            "0.5: &a [" + ",".join(["w"] * 2000) + "]\n" + "".join(f"{k}.5: *a\n" for k in range(1, 200_000)),
        ),
        (
            "subtitles.scalar_alias_window",
            _SUB,
            "0.5: &a " + "x" * 1_000_000 + "\n" + "".join(f"{k / 100:.2f}: *a\n" for k in range(1, 3000)),
        ),
        ("subtitles.emoji", _SUB, "1.5: " + "\U0001f600" * 1_100_000 + "\n"),
        ("subtitles.dense_nodes", _SUB, "1.5: [" + "a," * 1_900_000 + "a]\n"),
        ("clip.edit_list_200k", _V, edit_list_bomb(clip, 200_000)),
        ("clip.sample_count", _V, _claim_samples(clip)),
        ("clip.frame_size_lie", _V, frame_size_lie(3000, 3000)),
        ("clip.mpeg4", _V, _mpeg4_clip()),
        ("clip.blob_100MB", _V, _pad(clip, 100_000_000)),
    ]


@pytest.fixture(scope="module")
def hostile_shard(sample_root, tmp_path_factory) -> tuple[Path, list[str]]:
    base = pq.read_table(sample_root / "data" / "test-00000-of-00001.parquet").to_pylist()
    mutants = []
    for k, (kind, column, value) in enumerate(_hostile(base[0])):
        row = dict(base[k % len(base)], item_idx=2_000_000 + k)
        row[column] = value
        if column == _V:
            row["youtube_video_size"] = len(value)
        mutants.append(Mutant(row=row, family=kind.split(".")[0], kind=kind, must_fail=None))
    good = [Mutant(row=dict(r), family="text", kind="good", must_fail=None) for r in base]
    rows = [m for k, mutant in enumerate(mutants) for m in (mutant, good[k % len(good)])] + good
    path = tmp_path_factory.mktemp("budget") / "hostile-00000-of-00001.parquet"
    pq.write_table(mutants_to_table(rows), path, row_group_size=4)
    return path, [m.kind for m in rows]


_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import psutil, torch
    from tali import AudioConfig, TaliConfig, TaliDataset
    from tali.collation import collate
    from tali.data.policy import ErrorReport
    from tali.data.streaming import TaliStream
    from tali.errors import TaliDataError

    path = sys.argv[1]
    # Every sub-modality, default limits (the sample data has a clip without audio: zeros).
    config = TaliConfig(audio=AudioConfig(on_missing="zeros"))
    me = psutil.Process()
    out = {"rows": [], "loaders": {}}
    ds = TaliDataset(files=[path], config=config, on_error="raise")
    ds[1]  # warm up: imports, codecs, scalers

    def high_water():
        # The kernel's peak RSS (VmHWM), reset below so the warm-up's own peak is not counted.
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    baseline = me.memory_info().rss
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass
    for i in range(len(ds)):
        started = time.monotonic()
        try:
            ds[i]
            error = None
        except TaliDataError as exc:
            error = f"{type(exc).__name__}: {exc}"
        peak = high_water() - baseline
        out["rows"].append({"index": i, "seconds": time.monotonic() - started, "error": error, "peak": peak})
    out["map_raise_peak"] = high_water() - baseline

    def run(dataset, **kw):
        report, started = ErrorReport(), time.monotonic()
        loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate, **kw)
        try:
            for batch in loader:
                if dataset.on_error != "raise":
                    report.update(batch)
            error = None
        except TaliDataError as exc:
            error = f"{type(exc).__name__}: {exc}"
        del loader
        return {"seconds": time.monotonic() - started, "error": error, "read": report.read,
                "yielded": report.yielded, "skipped": len(report.skipped)}

    parent = me.memory_info().rss
    out["loaders"]["map_skip"] = run(TaliDataset(files=[path], config=config, on_error="skip"))
    out["loaders"]["stream_skip"] = run(TaliStream([path], config=config, on_error="skip", shuffle=False))
    out["loaders"]["stream_raise"] = run(TaliStream([path], config=config, on_error="raise", shuffle=False))
    out["loaders"]["map_raise"] = run(TaliDataset(files=[path], config=config, on_error="raise"))
    out["worker_peak"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 - parent
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def measured(hostile_shard, tmp_path_factory):
    path, _ = hostile_shard
    script = tmp_path_factory.mktemp("child") / "child.py"
    script.write_text(_CHILD)
    src = str(Path(tali.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, str(script), str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    # Shown with ``pytest -s``: the numbers docs/QUALITY.md quotes.
    print("peak RSS over baseline (MiB):", measured["map_raise_peak"] >> 20, measured["worker_peak"] >> 20)
    print("slowest rows (s):", sorted(round(r["seconds"], 2) for r in measured["rows"])[-5:])
    rises = [
        (r["index"], r["peak"] >> 20)
        for r, prev in zip(measured["rows"], [{"peak": 0}] + measured["rows"])
        if r["peak"] > prev["peak"]
    ]
    print("rows that raised the peak (index, MiB):", rises)
    print("loaders (s):", {name: round(run["seconds"], 1) for name, run in measured["loaders"].items()})
    return measured


def test_every_hostile_row_fails_typed_or_decodes_in_bounded_time(hostile_shard, measured):
    _, kinds = hostile_shard
    by_kind = {kinds[r["index"]]: r for r in measured["rows"]}
    for kind, row in by_kind.items():
        assert row["seconds"] < ROW_SECONDS, (kind, row)
    must_fail = {
        "image.jpeg_20k_scans": "20010 scans, over the 64-scan limit",
        "image.eps": "not a supported image format",
        "subtitles.alias_fanout": "YAML nodes",
        "subtitles.scalar_alias_window": "expand to over 4000000 bytes",
        "subtitles.emoji": "bytes of UTF-8, over the 4000000 limit",
        "subtitles.dense_nodes": "YAML nodes",
        "clip.edit_list_200k": "edit list of 200000 entries",
        "clip.sample_count": "samples",
        "clip.frame_size_lie": "3000x3000, over the 8847360-pixel frame limit",
        "clip.mpeg4": "codec 'mpeg4' is not supported",
        "clip.blob_100MB": "over the 67108864-byte limit",
    }
    for kind, message in must_fail.items():
        assert by_kind[kind]["error"] and message in by_kind[kind]["error"], (kind, by_kind[kind])
    # Valid within the limits: decoded, not refused (the bounds are on cost, not on shape).
    for kind in ("image.png16_8000", "image.aspect_1x10M", "image.aspect_1x40k", "good"):
        assert by_kind[kind]["error"] is None, (kind, by_kind[kind])


def test_no_row_exceeds_the_memory_budget(measured):
    assert 0 < ROW_MEMORY_BUDGET_BYTES
    assert measured["map_raise_peak"] < ROW_MEMORY_BUDGET_BYTES, measured["map_raise_peak"] / 2**20
    assert measured["worker_peak"] < ROW_MEMORY_BUDGET_BYTES, measured["worker_peak"] / 2**20


def test_both_loaders_survive_skip_and_raise_typed(hostile_shard, measured):
    _, kinds = hostile_shard
    bad = sum(1 for r in measured["rows"] if r["error"])
    assert bad >= 11
    for name in ("map_skip", "stream_skip"):
        run = measured["loaders"][name]
        assert run["error"] is None, (name, run)
        assert run["yielded"] + run["skipped"] == run["read"] and run["skipped"] == bad, (name, run)
        assert run["seconds"] < ROW_SECONDS * len(kinds) / 2, (name, run)
    for name in ("map_raise", "stream_raise"):
        error = measured["loaders"][name]["error"]
        assert error and error.startswith("Tali") and "item_idx=20000" in error, (name, error)
