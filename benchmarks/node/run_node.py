"""Everything issue 26 measures on a training node (a GPU + many cores), in one run. Prints JSON.

    PYTHONPATH=src python benchmarks/node/run_node.py --out node.json              # the GPU machine
    PYTHONPATH=src python benchmarks/node/run_node.py --smoke --device cpu          # < 2 min on 2 cores

Parts, each bounded by its share of ``--budget-s`` and isolated (a failing part records
its error; the others still run):

- ``gpu_tests``: ``pytest -m gpu tests/gpu`` (device normalisation, log-mel on the
  device, pinned ``non_blocking`` copies), counts and every test's outcome;
- ``loader``: samples/s, CPU-s per sample, RSS per worker and scaling efficiency for
  the default config and A/V, original and prepared shards, per worker count
  (``throughput.py``);
- ``train``: the examples' contrastive model, step time fed by the loader vs by
  synthetic tensors, and the fewest workers that keep up (``train.py``);
- ``hwdecode``: can PyAV's bundled FFmpeg decode H.264 on the GPU (NVDEC through
  ``HWAccel("cuda")``)? If so, frames and time against the CPU path; else the error.

Data: the sample dataset (built on first use), its train split prepared with
``tali.prepare`` into a temporary directory, and both replicated by symlinks into
splits big enough that every worker count has the same work per worker.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

import tali
from benchmarks.common import emit
from benchmarks.node.throughput import scaling
from benchmarks.node.train import train_feed

#: Share of the budget each part may use (the loader part is the long one).
SHARES = {"gpu_tests": 0.15, "hwdecode": 0.05, "loader": 0.5, "train": 0.3}


def log(message: str) -> None:
    print(f"[node {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine(device: str) -> dict[str, Any]:
    import av

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "pyav": av.__version__,
        "ffmpeg": str(getattr(av, "ffmpeg_version_info", "unknown")),
        "device": device,
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def reshard(files: list[str], out: Path, rows: int, shards: int) -> list[Path]:
    """The first ``rows`` rows of ``files`` as ``shards`` Hub-named shards: ``tali prepare``
    works shard by shard, so more shards prepare on more cores."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables(pq.read_table(f) for f in files)
    table = table.slice(0, min(rows, table.num_rows))
    per = -(-table.num_rows // shards)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(shards):
        path = data / f"train-{i:05d}-of-{shards:05d}.parquet"
        pq.write_table(table.slice(i * per, per), path)
        paths.append(path)
    return paths


def replicate(files: list[Path], out: Path, rows: int) -> Path:
    """A train split of >= ``rows`` rows: symlinks to ``files`` under Hub-style names."""
    import pyarrow.parquet as pq

    per_copy = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    copies = max(1, -(-rows // per_copy))
    n = copies * len(files)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (data / f"train-{i:05d}-of-{n:05d}.parquet").symlink_to(Path(files[i % len(files)]).resolve())
    return out


def clips_of(files: list[Path], limit: int) -> list[bytes]:
    """The first ``limit`` video clips of ``files`` (the hwdecode part's input)."""
    import pyarrow.parquet as pq

    clips = []
    for f in files:
        for row in pq.read_table(f, columns=["youtube_video_content"]).to_pylist():
            if row["youtube_video_content"] and len(clips) < limit:
                clips.append(row["youtube_video_content"])
    return clips


def part_gpu_tests(timeout: float, work: Path) -> dict[str, Any]:
    junit = work / "gpu-tests.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-rs", "-p", "no:cacheprovider"]
    cmd += [f"--junitxml={junit}"]
    proc = subprocess.run(
        cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=max(timeout, 120)
    )
    tests: dict[str, str] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = case.get("name", "?")
            outcome = "passed"
            for tag in ("failure", "error", "skipped"):
                found = case.find(tag)
                if found is not None:
                    outcome = f"{tag}: {found.get('message', '')}"[:300]
                    break
            tests[name] = outcome
    counts = {
        k: sum(v.startswith(k) for v in tests.values()) for k in ("passed", "failure", "error", "skipped")
    }
    return {
        "returncode": proc.returncode,
        "ok": proc.returncode == 0,
        "counts": counts,
        "tests": tests,
        "tail": (proc.stdout + proc.stderr)[-2000:],
    }


def _decode_all(data: bytes, hwaccel: Any = None) -> tuple[list[Any], float, str]:
    import av

    t0 = time.perf_counter()
    with av.open(io.BytesIO(data), hwaccel=hwaccel) as container:
        stream = container.streams.video[0]
        frames, native = [], "?"
        for frame in container.decode(stream):
            native = frame.format.name
            frames.append(frame.to_ndarray(format="rgb24"))
    return frames, time.perf_counter() - t0, native


def nvdec() -> Any:
    from av.codec.hwaccel import HWAccel

    return HWAccel("cuda", allow_software_fallback=False)


def part_hwdecode(
    clips: list[bytes], deadline: float, make_accel: Callable[[], Any] = nvdec
) -> dict[str, Any]:
    """NVDEC through PyAV's bundled FFmpeg, no software fallback, against the CPU decoder.

    ``make_accel`` returns the decoder's ``hwaccel`` (tests pass ``None``: the CPU decoder
    against itself, so the comparison runs where there is no GPU)."""
    import av
    import numpy as np
    from av.codec.hwaccel import hwdevices_available

    out: dict[str, Any] = {"pyav": av.__version__, "hwdevices_available": list(hwdevices_available())}
    try:
        _decode_all(clips[0], make_accel())  # warm-up: device context, decoder start
    except Exception as exc:  # noqa: BLE001 (the answer to the question: record it)
        out.update(available=False, error=f"{type(exc).__name__}: {exc}")
        return out
    out["available"] = True
    rows = []
    for data in clips:
        if time.monotonic() > deadline:
            break
        cpu, cpu_s, cpu_fmt = _decode_all(data)
        try:
            gpu, gpu_s, gpu_fmt = _decode_all(data, make_accel())
        except Exception as exc:  # noqa: BLE001 (a clip NVDEC refuses, e.g. a profile it lacks)
            rows.append({"frames_cpu": len(cpu), "error": f"{type(exc).__name__}: {exc}"})
            continue
        diffs = [np.abs(a.astype(np.int16) - b.astype(np.int16)) for a, b in zip(cpu, gpu)]
        rows.append(
            {
                "frames_cpu": len(cpu),
                "frames_gpu": len(gpu),
                "native_format_cpu": cpu_fmt,
                "native_format_gpu": gpu_fmt,
                "mean_abs_diff_255": float(np.mean([d.mean() for d in diffs])) if diffs else None,
                "max_abs_diff_255": int(max(d.max() for d in diffs)) if diffs else None,
                "cpu_ms_per_frame": 1e3 * cpu_s / max(len(cpu), 1),
                "gpu_ms_per_frame": 1e3 * gpu_s / max(len(gpu), 1),
            }
        )
    out["clips"] = rows
    decoded = [r for r in rows if "error" not in r]
    out["clips_decoded_on_gpu"] = len(decoded)
    if decoded:
        out["same_frame_counts"] = all(r["frames_cpu"] == r["frames_gpu"] for r in decoded)
        out["cpu_over_gpu_time"] = sum(r["cpu_ms_per_frame"] for r in decoded) / sum(
            r["gpu_ms_per_frame"] for r in decoded
        )
    return out


def run_part(results: dict[str, Any], name: str, fn: Callable[[], dict[str, Any]], out: str | None) -> None:
    t0 = time.monotonic()
    log(f"{name} ...")
    try:
        part = {"ok": True, **fn()}
    except BaseException as exc:  # one part failing must not cost the others' numbers
        if isinstance(exc, KeyboardInterrupt):
            raise
        part = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    part["seconds"] = time.monotonic() - t0
    results["parts"][name] = part
    if out:  # what is done survives a kill from outside (the device command's timeout)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(results, indent=2) + "\n")
    log(f"{name} done in {part['seconds']:.0f} s ({'ok' if part['ok'] else part['error']})")


def parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="also write the JSON here")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--budget-s", type=float, default=300.0, help="the whole run; parts share what setup leaves"
    )
    parser.add_argument("--workers", default="1,2,4,8,16", help="loader worker counts")
    parser.add_argument("--batch-size", type=int, default=8, help="loader benchmark batch")
    parser.add_argument("--batches-per-worker", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--train-workers", default="1,2,4,8,16")
    parser.add_argument("--train-source", choices=("original", "prepared"), default="original")
    parser.add_argument("--train-batch-size", type=int, default=32)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--train-warmup", type=int, default=5)
    parser.add_argument("--base-rows", type=int, default=16, help="sample train rows prepared")
    parser.add_argument("--base-shards", type=int, default=8, help="their shards (prepare's parallelism)")
    parser.add_argument("--hw-clips", type=int, default=8, help="clips for the hwdecode comparison")
    parser.add_argument("--parts", default=",".join(SHARES), help="which parts to run")
    parser.add_argument("--work-dir", default=None, help="default: a temporary directory, removed")
    parser.add_argument("--smoke", action="store_true", help="tiny everything (CPU, < 2 min)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.workers, args.train_workers = "1,2", "0,1"
        args.batch_size, args.batches_per_worker, args.rounds = 2, 2, 1
        args.train_batch_size, args.train_steps, args.train_warmup = 2, 3, 1
        args.hw_clips, args.base_rows, args.base_shards = 2, 2, 1
        args.budget_s = min(args.budget_s, 300.0)
    start = time.monotonic()
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(SHARES)
    if unknown:
        parser.error(f"--parts: unknown {sorted(unknown)}; choose from {', '.join(SHARES)}")
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(args.device),
        "smoke": args.smoke,
        "budget_s": args.budget_s,
        "parts": {},
    }
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="tali-node-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        workers, train_workers = parse_ints(args.workers), parse_ints(args.train_workers)
        setup: dict[str, Any] = {}

        def prepare_data() -> dict[str, Any]:
            from tali.data.sources import resolve_local_files
            from tali.prepare import prepare

            t0 = time.monotonic()
            sample = tali.sample_data.build()
            setup["sample_build_s"] = time.monotonic() - t0
            original = reshard(
                resolve_local_files(sample, "train"), work / "original", args.base_rows, args.base_shards
            )
            t0 = time.monotonic()
            report = prepare(work / "original", work / "prepared", split="train", workers=len(original))
            setup["prepare_s"] = time.monotonic() - t0
            if not report.ok:
                raise RuntimeError(f"tali prepare failed: {report.summary()}")
            prepared = [Path(f) for f in resolve_local_files(work / "prepared", "train")]
            loader_rows = max(workers) * (args.batches_per_worker + 1) * args.batch_size
            train_rows = (args.train_warmup + args.train_steps + 1) * args.train_batch_size
            rows = max(loader_rows, train_rows)
            setup["sources"] = {
                "original": str(replicate(original, work / "original-rep", rows)),
                "prepared": str(replicate(prepared, work / "prepared-rep", rows)),
            }
            setup["rows"] = rows
            setup["clips"] = clips_of(original, args.hw_clips)
            return {k: v for k, v in setup.items() if k != "clips"}

        run_part(results, "setup", prepare_data, args.out)
        budget_end = start + args.budget_s
        pending = list(parts)

        def deadline_for(name: str) -> float:
            """This part's share of what is left (time a part did not use goes to the next)."""
            share = SHARES[name] / sum(SHARES[p] for p in pending)
            pending.remove(name)
            return time.monotonic() + max(0.0, budget_end - time.monotonic()) * share

        if "gpu_tests" in parts:
            run_part(
                results,
                "gpu_tests",
                lambda: part_gpu_tests(deadline_for("gpu_tests") - time.monotonic(), work),
                args.out,
            )
        if "hwdecode" in parts:
            run_part(
                results,
                "hwdecode",
                lambda: part_hwdecode(setup["clips"], deadline_for("hwdecode")),
                args.out,
            )
        sources = {k: Path(v) for k, v in setup.get("sources", {}).items()}
        if "loader" in parts:
            run_part(
                results,
                "loader",
                lambda: scaling(
                    sources,
                    workers=workers,
                    batch_size=args.batch_size,
                    batches_per_worker=args.batches_per_worker,
                    rounds=args.rounds,
                    deadline=deadline_for("loader"),
                    log=log,
                ),
                args.out,
            )
        if "train" in parts:
            run_part(
                results,
                "train",
                lambda: train_feed(
                    sources[args.train_source],
                    device=args.device,
                    workers=train_workers,
                    batch_size=args.train_batch_size,
                    steps=args.train_steps,
                    warmup=args.train_warmup,
                    deadline=deadline_for("train"),
                    log=log,
                ),
                args.out,
            )
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    results["seconds"] = time.monotonic() - start
    emit(results, args.out)
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
