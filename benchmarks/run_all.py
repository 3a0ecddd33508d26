"""The benchmark suite: tali against its floor and its peers, and how it scales.

One process tree, the same rows (the sample dataset's train split: 16 rows in 2
shards, every clip variant), the same choices (window and frame times are taken
from tali and handed to every other loader), rounds interleaved. Prints a table
to stderr and JSON to stdout; ``--plot`` writes the scaling curves as a PNG.

Cases (``compare`` group; batch size 4; DataLoader with 1 and 2 workers):

- ``tali_default``: every sub-modality, the default config (3 s window, 8 frames, 224 px);
- ``tali_whole_clip``: the same with the window = the whole clip;
- ``tali_av``: video + audio only, the output every peer below produces;
- ``floor_av``: PyAV decoding exactly those frames and that audio, nothing else;
- ``output_floor_av``: the floor plus the least output work (frames scaled to RGB by
  swscale, the window's samples, both as tensors): the bound on any loader's rate for
  ``tali_av``'s output, and so on the ratio any loader can reach against a peer;
- ``torchcodec_av`` and ``hf_streaming_av``: the peers (see ``suite/peers.py``);
- ``naive``: decode everything, then pick (see ``benchmarks/common.py``).

``scaling`` group: ``tali_default`` with one worker, varying one knob at a time:
window seconds (1, 3, 10, 30), frames per clip (1, 8, 32), output size
(112, 224, 336); and workers (1, 2). Peak RSS for each.

    PYTHONPATH=src:benchmarks python benchmarks/run_all.py --rounds 3 --plot docs/img/scaling.png > bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.suite.baselines import FloorDataset, NaiveDataset, OutputFloorDataset
from benchmarks.suite.harness import Case, loader, run_interleaved
from benchmarks.suite.peers import HFStreamingPeer, TorchCodecPeer, plans_from_tali
from benchmarks.suite.report import goals, plot_scaling, table
from tali import AudioConfig, TaliConfig, TaliDataset, VideoConfig, WindowConfig, sample_data

AV = ("youtube_content_video", "youtube_content_audio")


def _tali(files: list[str], config: TaliConfig, batch_size: int, epochs: int):
    dataset = TaliDataset(files=files, config=config)
    return lambda workers: loader(dataset, workers, batch_size, epochs)


def _over(dataset: Any, batch_size: int, epochs: int):
    return lambda workers: loader(dataset, workers, batch_size, epochs)


def build_cases(args: argparse.Namespace) -> tuple[list[Case], dict[str, Any]]:
    root = sample_data.build() if args.source is None else args.source
    # The sample data has one clip without audio on purpose; real TALI rows have audio.
    base = TaliConfig(audio=AudioConfig(on_missing="zeros"), seed=args.seed)
    files = TaliDataset(root, split=args.split, config=base).files
    if args.shards:
        files = files[: args.shards]
    bs, ep = args.batch_size, args.epochs
    av = base.replace(modalities=AV)
    plans = plans_from_tali(TaliDataset(files=files, config=av))
    workers = sorted(set(args.workers))
    cases: list[Case] = []
    compare = {
        "tali_default": _tali(files, base, bs, ep),
        "tali_whole_clip": _tali(files, base.replace(window=WindowConfig(seconds=None)), bs, ep),
        "tali_av": _tali(files, av, bs, ep),
        "torchcodec_av": _over(TorchCodecPeer(files, plans, av), bs, ep),
        "hf_streaming_av": _over(HFStreamingPeer(files, plans, av), bs, ep),
    }
    compare.update(baselines(files, plans, av, base, bs, ep))
    for name, make in compare.items():
        if args.only and name not in args.only:
            continue
        for w in [1] if name in ("naive", "floor_av", "output_floor_av") else workers:
            cases.append(Case(name, make, workers=w))
    if not args.no_scaling:
        knobs: list[tuple[str, Any, TaliConfig]] = []
        for seconds in args.window_seconds:
            knobs.append(("window_seconds", seconds, base.replace(window=WindowConfig(seconds=seconds))))
        for n in args.frames:
            knobs.append(("num_frames", n, base.replace(video=VideoConfig(num_frames=n))))
        for size in args.sizes:
            knobs.append(
                (
                    "size",
                    size,
                    base.replace(video=VideoConfig(size=size), image=base.image.__class__(size=size)),
                )
            )
        for knob, value, config in knobs:
            cases.append(
                Case(
                    f"tali_default[{knob}={value}]",
                    _tali(files, config, bs, ep),
                    workers=1,
                    group="scaling",
                    params={"knob": knob, "value": value},
                )
            )
    meta = {
        "rows": sum(len(TaliDataset(files=[f], config=av)) for f in files),
        "files": [Path(f).name for f in files],
        "epochs": ep,
        "batch_size": bs,
        "rounds": args.rounds,
    }
    return cases, meta


def baselines(files, plans, av, base, bs, ep) -> dict[str, Any]:
    """The naive decode-everything loader, the PyAV decode-only floor and the output floor
    (benchmarks/common.py).
    The naive loader makes one pass only: it is 10-50x slower, and its rate is stable."""
    return {
        "floor_av": _over(FloorDataset(files, plans, av), bs, ep),
        "output_floor_av": _over(OutputFloorDataset(files, plans, av), bs, ep),
        "naive": _over(NaiveDataset(files, plans, av), bs, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="tali benchmark suite (JSON on stdout, table on stderr)")
    parser.add_argument("--source", default=None, help="dataset directory (default: the sample dataset)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--shards", type=int, default=None, help="use only the first N shards (smoke runs)")

    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="passes over the rows per measurement")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--window-seconds", type=float, nargs="+", default=[1.0, 3.0, 10.0, 30.0])
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 224, 336])
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--only", nargs="+", default=None, help="run only these compare cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=None, help="write the scaling curves to this PNG")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    cases, meta = build_cases(args)

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    meta["load_average_before"] = os.getloadavg()
    meta["usable_cores"] = len(os.sched_getaffinity(0))
    run_interleaved(cases, args.rounds, log)
    # The machine may be shared: a load average above the core count means other
    # work competed with every case alike (rounds are interleaved), ratios stay fair.
    meta["load_average_after"] = os.getloadavg()
    results = [c.summary() for c in cases]
    out = {"meta": meta, "cases": results, "goals": goals(results)}
    print(table(out), file=sys.stderr)
    if args.plot:
        out["plot"] = str(plot_scaling(results, args.plot))
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
