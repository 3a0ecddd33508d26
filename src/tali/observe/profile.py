"""Where a sample's time goes, and how many workers a target rate needs.

Two passes over the same ``samples`` rows, in this process (no workers, so the
numbers are one worker's):

1. unprofiled, with stage clocks on: wall time per sample, time per stage;
2. under a real profiler (``cProfile`` by default, or ``pyinstrument``): time per
   function. Profilers slow Python code down, so pass 1's numbers are the ones
   the worker estimate uses.

The estimate: one worker delivers ``r1 = samples / wall`` samples/s; ``k``
workers deliver about ``k * r1 * efficiency`` while ``k`` does not exceed the
cores this process may use. ``efficiency`` defaults to 0.9, an assumption for
dedicated cores (``benchmarks/run_all.py`` measured 0.80-0.88 per worker on a
shared 2-core machine, where the main process and other jobs take a share; see
docs/PERFORMANCE.md); ``verify`` runs a real DataLoader with ``k`` workers and
reports the measured rate.
"""

from __future__ import annotations

import cProfile
import math
import os
import pstats
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import torch.utils.data

from tali.data.dataset import TaliDataset, make_loader
from tali.errors import TaliConfigError
from tali.observe.monitor import Monitor

__all__ = ["ProfileReport", "Profiler", "parse_rate", "profile_dataset", "usable_cores"]

Profiler = Literal["cprofile", "pyinstrument"]

#: What to try when a stage dominates and the target is out of reach.
_HINTS = {
    "read": "read fewer columns (modalities) or copy shards to local disk; bigger row groups amortise reads",
    "open": "clips are opened once per sample already; fewer, longer windows per clip amortise it",
    "video_decode": "fewer frames (--num-frames), a smaller --size, --interpolation bilinear, or --keyframes-only",
    "audio_decode": "a lower --sample-rate or a shorter window",
    "image_decode": "a smaller image size",
    "text": "the subtitle YAML is large: limit it with TextConfig.max_subtitle_bytes",
    "processors": "run model processors on the GPU, after the loader",
    "collate": "a larger batch spends less per sample on collate overhead",
}


def parse_rate(text: str) -> float:
    """``"500/s"``, ``"500"``, ``"30000/min"`` -> samples per second."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(?:/\s*(s|sec|second|min|minute|h|hour))?\s*", str(text))
    if not match or float(match.group(1)) <= 0:
        raise TaliConfigError(
            f"target rate {text!r} is not a positive rate like '500/s', '500' or '30000/min'"
        )
    per = {"min": 60, "minute": 60, "h": 3600, "hour": 3600}.get(match.group(2) or "s", 1)
    return float(match.group(1)) / per


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, kw_only=True)
class ProfileReport:
    """Stages from the unprofiled pass; functions from the profiled pass."""

    samples: int
    wall_seconds: float
    samples_per_second_one_worker: float
    stages: dict[str, dict[str, float]]
    functions: list[dict[str, Any]]
    profiler: str
    cores: int
    efficiency: float
    target_per_second: float | None = None
    workers_needed: int | None = None
    feasible: bool | None = None
    bottleneck: str = ""
    advice: str = ""
    verified: dict[str, Any] | None = None
    tree: str | None = field(default=None, repr=False)

    @property
    def verdict(self) -> str:
        r1 = self.samples_per_second_one_worker
        if self.target_per_second is None:
            return f"one worker delivers {r1:.1f} samples/s; {self.bottleneck} takes most of the time"
        k, target = self.workers_needed, self.target_per_second
        if self.feasible:
            text = (
                f"yes: {target:g}/s needs {k} worker(s) at {r1:.1f} samples/s each "
                f"(x{self.efficiency:g} parallel efficiency); this machine has {self.cores} usable cores"
            )
        else:
            best = self.cores * r1 * self.efficiency
            text = (
                f"no: {target:g}/s needs {k} workers at {r1:.1f} samples/s each, but only {self.cores} cores "
                f"are usable here (about {best:.0f}/s at most). {self.bottleneck} dominates: {self.advice}"
            )
        if self.verified is not None:
            text += (
                f". Measured with {self.verified['workers']} workers: "
                f"{self.verified['samples_per_second']:.1f} samples/s"
            )
        return text

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("tree")
        out["verdict"] = self.verdict
        return out


def _indices(dataset: torch.utils.data.Dataset, samples: int, start: int) -> list[int]:
    n = len(dataset)  # type: ignore[arg-type]
    return [(start + i) % n for i in range(samples)]


def _stage_pass(dataset: TaliDataset, indices: list[int], batch_size: int) -> tuple[float, Monitor]:
    monitor = Monitor(resources=False)
    loader = make_loader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size, num_workers=0)
    t0 = time.perf_counter()
    with monitor:
        for _ in monitor.watch(loader):
            pass
    return time.perf_counter() - t0, monitor


def _cprofile_functions(dataset: TaliDataset, indices: list[int], batch_size: int, top: int) -> list[dict]:
    profiler = cProfile.Profile()
    loader = make_loader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size, num_workers=0)
    profiler.enable()
    for _ in loader:
        pass
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in stats.items():
        rows.append(
            {
                "function": name,
                "where": _short(filename) if filename == "~" else f"{_short(filename)}:{line}",
                "calls": ncalls,
                "self_seconds": tottime,
                "cumulative_seconds": cumtime,
            }
        )
    rows.sort(key=lambda r: r["self_seconds"], reverse=True)
    return rows[:top]


def _pyinstrument_functions(
    dataset: TaliDataset, indices: list[int], batch_size: int, top: int
) -> tuple[list[dict], str]:
    from tali._optional import require

    PyiProfiler = require("pyinstrument", extra="observe", feature="profiler='pyinstrument'").Profiler
    # 0.2 ms sampling: a sample takes tens of ms, so each gets a few hundred stacks.
    profiler = PyiProfiler(interval=0.0002)
    loader = make_loader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size, num_workers=0)
    with profiler:
        for _ in loader:
            pass
    totals: dict[tuple[str, str], float] = {}
    root = profiler.last_session.root_frame() if profiler.last_session else None
    stack = [root] if root is not None else []
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        if frame.is_synthetic:  # "[self]" and friends: counted in their parent below
            continue
        self_time = frame.time - sum(child.time for child in frame.children if not child.is_synthetic)
        if self_time > 0:
            key = (frame.function or "?", f"{_short(frame.file_path or '?')}:{frame.line_no}")
            totals[key] = totals.get(key, 0.0) + self_time
    rows = [
        {"function": f, "where": w, "calls": None, "self_seconds": s, "cumulative_seconds": None}
        for (f, w), s in totals.items()
    ]
    rows.sort(key=lambda r: float(r["self_seconds"] or 0.0), reverse=True)
    return rows[:top], profiler.output_text(unicode=True, color=False, show_all=False)


def _short(path: str) -> str:
    if path in ("~", ""):
        return "<built-in>"
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _measure_workers(dataset: TaliDataset, workers: int, samples: int, batch_size: int) -> dict[str, Any]:
    indices = _indices(dataset, max(samples, 2 * workers * batch_size), 0)
    loader = make_loader(
        torch.utils.data.Subset(dataset, indices), batch_size=batch_size, num_workers=workers
    )
    it = iter(loader)
    first = next(it)  # worker start-up is not throughput
    t0 = time.perf_counter()
    n = 0
    for batch in it:
        n += len(batch["item_idx"])
    seconds = time.perf_counter() - t0
    del first
    return {
        "workers": workers,
        "samples": n,
        "seconds": seconds,
        "samples_per_second": n / seconds if seconds > 0 else 0.0,
    }


def profile_dataset(
    dataset: TaliDataset,
    *,
    samples: int = 32,
    target_per_second: float | None = None,
    profiler: Profiler = "cprofile",
    batch_size: int = 1,
    top: int = 20,
    efficiency: float = 0.9,
    verify: bool = False,
) -> ProfileReport:
    """Profile ``samples`` rows of ``dataset`` (see the module docstring)."""
    if profiler not in get_args(Profiler):
        raise TaliConfigError(f"profiler={profiler!r} is not allowed; choose one of {get_args(Profiler)}")
    if not isinstance(samples, int) or samples < 1:
        raise TaliConfigError(f"samples must be an int >= 1, got {samples!r}")
    if not 0 < efficiency <= 1:
        raise TaliConfigError(f"efficiency must be in (0, 1], got {efficiency!r}")
    dataset[0]  # warm up: open the shards, fill the row-group cache, load codecs
    indices = _indices(dataset, samples, 1)
    was_collecting, dataset.collect_stats = dataset.collect_stats, True  # pass 1 reads the clocks
    try:
        wall, monitor = _stage_pass(dataset, indices, batch_size)
    finally:
        dataset.collect_stats = was_collecting
    snap = monitor.snapshot()
    tree = None
    if profiler == "cprofile":
        functions = _cprofile_functions(dataset, indices, batch_size, top)
    else:
        functions, tree = _pyinstrument_functions(dataset, indices, batch_size, top)
    r1 = samples / wall
    bottleneck = max(snap.stages, key=lambda k: snap.stages[k]["seconds"])
    cores = usable_cores()
    workers = feasible = None
    if target_per_second is not None:
        workers = max(
            1, math.ceil(target_per_second / (r1 * (efficiency if target_per_second > r1 else 1.0)))
        )
        feasible = workers <= cores
    verified = None
    if verify:
        verified = _measure_workers(dataset, min(workers or cores, cores), samples, max(batch_size, 2))
    return ProfileReport(
        samples=samples,
        wall_seconds=wall,
        samples_per_second_one_worker=r1,
        stages=snap.stages,
        functions=functions,
        profiler=profiler,
        cores=cores,
        efficiency=efficiency,
        target_per_second=target_per_second,
        workers_needed=workers,
        feasible=feasible,
        bottleneck=bottleneck,
        advice=_HINTS.get(bottleneck, ""),
        verified=verified,
        tree=tree,
    )
