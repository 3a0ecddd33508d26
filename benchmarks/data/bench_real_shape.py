"""The loaders at TALI's real shape (``tali.sample_data.realshape``). Prints JSON.

    python benchmarks/data/bench_real_shape.py [--rows-mb 1.7] [--shards 600] [--latency 0.05]
                                                [--samples 24] [--quick] [--out FILE]

1. Random access and streaming at row groups of 3, 100 and 1,000 rows (``datasets``'
   layout: one clip per page, page index), local and over the loopback Hub: bytes read
   per sample against the row's own projected bytes, CPU ms per sample and peak RSS of a
   fresh process, for ``TaliDataset`` (shuffled indices) and ``TaliStream``. Also
   pyarrow's default layout at 100 rows (one dictionary page per chunk: row-group reads),
   uniform shuffle vs :class:`~tali.data.sampler.RowGroupShuffleSampler`.
2. Start-up at ``--shards`` real-named shards behind the loopback Hub with ``--latency``
   seconds per request: time to the first batch and requests, for 1 process and for 8
   processes starting together (each scenario with a cold footer cache).

Every scenario runs in a fresh subprocess (RSS and caches are its own); medians of
``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from tali.sample_data.hub_server import HubServer
from tali.sample_data.realshape import write_real_shaped

REPO = "Antreas/TALI"
SRC = str(Path(__file__).resolve().parents[2] / "src")

# Runs in a fresh process: reads `samples` rows of the split, reports what it cost.
READER = textwrap.dedent(
    """
    import json, sys, time, torch
    import tali
    from tali.data.sampler import RowGroupShuffleSampler
    args = json.loads(sys.argv[1])
    config = tali.TaliConfig(modalities=("youtube_content_video", "youtube_content_audio"))
    kw = dict(split="train", config=config, progress=False)
    if args["endpoint"]:
        kw["endpoint"] = args["endpoint"]
    if args["loader"] == "stream":
        data = tali.load(args["source"], streaming=True, shuffle=True, buffer_size=8, **kw)
        source = data.source
        it = iter(data)
        cpu0 = time.process_time()
        rows = [next(it) for _ in range(args["samples"])]
    else:
        data = tali.load(args["source"], streaming=False, cache_row_groups=args["cache"], **kw)
        source = data.source
        if args["order"] == "row_group":
            order = list(RowGroupShuffleSampler(data, window=1, seed=0))[: args["samples"]]
        else:
            g = torch.Generator().manual_seed(0)
            order = torch.randperm(len(data), generator=g)[: args["samples"]].tolist()
        cpu0 = time.process_time()
        rows = [data[i] for i in order]
    cpu = time.process_time() - cpu0
    print(json.dumps({
        "bytes_read": source.bytes_read,
        "requests": getattr(source.ranges, "requests", 0),
        "cpu_ms_per_sample": 1000 * cpu / len(rows),
        # VmHWM, not ru_maxrss: the latter keeps the parent's high-water mark across exec
        "peak_rss_mb": int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024,
        "layout": {c: dict(n) for c, n in source.layout().items() if c == "youtube_video_content"},
        "item_idx": [int(s["item_idx"]) for s in rows],
    }))
    """
)

START = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.monotonic()
    import tali
    config = tali.TaliConfig(modalities=("youtube_title_text",))
    stream = tali.load("Antreas/TALI", split="train", endpoint=sys.argv[1], config=config, shuffle=False)
    loader = tali.make_loader(stream, batch_size=2, num_workers=0)
    next(iter(loader))
    print(json.dumps({"first_batch_s": time.monotonic() - t0, "shards": len(stream.files)}))
    """
)


def _run(script: str, *args: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _own_bytes(root: Path, item_ids: list[int]) -> float:
    """Mean projected bytes of these rows' values (clip + columns the A/V config reads)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from tali.config import TaliConfig
    from tali.schema import columns_for

    cols = columns_for(TaliConfig(modalities=("youtube_content_video", "youtube_content_audio")).modalities)
    table = ds.dataset(str(root / "data"), format="parquet").to_table(
        columns=cols, filter=pc.field("item_idx").isin(item_ids)
    )
    return table.nbytes / max(1, table.num_rows)


def random_access(args, base: Path) -> list[dict]:
    results = []
    row_bytes = int(args.rows_mb * 1e6)
    for rg in args.row_groups:
        for writer in ("datasets",) + (("pyarrow",) if rg == 100 else ()):
            # pyarrow's layout: several row groups, so the shuffles differ in what they re-read
            rows = max(rg * (4 if writer == "pyarrow" else 1), 2 * args.samples)
            root = base / f"rg{rg}-{writer}"
            if not root.exists():
                write_real_shaped(
                    root, splits={"train": (1, rows)}, row_group_rows=rg, row_bytes=row_bytes, writer=writer
                )
            for remote in (False, True):
                loaders = [("map", "uniform"), ("stream", "-")]
                if writer == "pyarrow":
                    loaders = [("map", "uniform"), ("map", "row_group")]
                for loader, order in loaders:
                    runs = []
                    for r in range(args.repeats):
                        env = {
                            **os.environ,
                            "PYTHONPATH": SRC,
                            "TALI_CACHE_DIR": str(
                                base / f"cache-{rg}-{writer}-{remote}-{loader}-{order}-{r}"
                            ),
                        }
                        spec = {
                            "source": str(root),
                            "endpoint": None,
                            "loader": loader,
                            "order": order,
                            "samples": args.samples,
                            "cache": 1,
                        }
                        if remote:
                            with HubServer(root) as hub:
                                spec.update(source=REPO, endpoint=hub.endpoint)
                                runs.append(_run(READER, json.dumps(spec), env=env))
                        else:
                            runs.append(_run(READER, json.dumps(spec), env=env))
                    own = _own_bytes(root, runs[0]["item_idx"])
                    per = [x["bytes_read"] / args.samples for x in runs]
                    results.append(
                        {
                            "row_group_rows": rg,
                            "writer": writer,
                            "remote": remote,
                            "loader": loader,
                            "order": order,
                            "layout": runs[0]["layout"],
                            "bytes_per_sample_mb": statistics.median(per) / 1e6,
                            "row_own_bytes_mb": own / 1e6,
                            "bytes_ratio": statistics.median(per) / own,
                            "cpu_ms_per_sample": statistics.median(x["cpu_ms_per_sample"] for x in runs),
                            "peak_rss_mb": statistics.median(x["peak_rss_mb"] for x in runs),
                        }
                    )
                    print(json.dumps(results[-1]), file=sys.stderr)
    return results


def startup(args, base: Path) -> list[dict]:
    root = base / "startup"
    if not root.exists():
        write_real_shaped(
            root, splits={"train": (args.shards, 4)}, row_group_rows=2, row_bytes=None, duplicate_shards=True
        )
    out = []
    for procs in (1, 8):
        with HubServer(root, latency=args.latency) as hub:
            env = {
                **os.environ,
                "PYTHONPATH": SRC,
                "TALI_CACHE_DIR": str(base / f"startup-cache-{procs}"),
                "HF_HOME": str(base / f"hf-{procs}"),
            }
            t0 = time.monotonic()
            running = [
                subprocess.Popen(
                    [sys.executable, "-c", START, hub.endpoint], env=env, stdout=subprocess.PIPE, text=True
                )
                for _ in range(procs)
            ]
            outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in running]
            wall = time.monotonic() - t0
            parquet = [r for r in hub.log if r.path.endswith(".parquet")]
            out.append(
                {
                    "processes": procs,
                    "shards": args.shards,
                    "latency_s": args.latency,
                    "first_batch_s_median": statistics.median(o["first_batch_s"] for o in outs),
                    "first_batch_s_max": max(o["first_batch_s"] for o in outs),
                    "wall_s": wall,
                    "requests_total": len(hub.log),
                    "requests_parquet": len(parquet),
                    "requests_other": len(hub.log) - len(parquet),
                }
            )
            print(json.dumps(out[-1]), file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows-mb", type=float, default=1.7)
    parser.add_argument("--row-groups", type=int, nargs="+", default=[3, 100, 1000])
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--shards", type=int, default=600)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="small rows and groups, 100 shards (a smoke run)"
    )
    parser.add_argument("--only", choices=["random", "startup"])
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.rows_mb, args.row_groups, args.samples, args.shards, args.repeats = 0.4, [3, 100], 8, 100, 1
    with tempfile.TemporaryDirectory(prefix="tali-realshape-") as tmp:
        base = Path(tmp)
        result = {"args": vars(args)}
        if args.only != "startup":
            result["random_access"] = random_access(args, base)
        if args.only != "random":
            result["startup"] = startup(args, base)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
