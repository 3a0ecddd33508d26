"""A live ``rich`` panel of a :class:`~tali.observe.monitor.MonitorSnapshot`.

Used by ``tali demo --monitor`` and ``tali bench`` inside ``rich.live.Live``;
a training loop can do the same with ``Live(monitor.panel())`` and
``live.update(monitor.panel())`` every few batches.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from tali.observe.monitor import MonitorSnapshot

__all__ = ["render"]


def _mb(value: Any) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}"


def _bar(share: float, width: int = 20) -> str:
    filled = round(share * width)
    return "█" * filled + "·" * (width - filled)


def render(snap: MonitorSnapshot, *, title: str = "tali loader") -> Panel:
    res = snap.resources
    head = (
        f"[bold]{snap.samples}[/bold] samples in {snap.elapsed_seconds:.1f} s: "
        f"[bold green]{snap.samples_per_second:.1f} samples/s[/bold green] "
        f"({snap.steady_samples_per_second:.1f} after the first batch), "
        f"{snap.bytes_per_second / 2**20:.1f} MiB/s read; "
        f"loop waited {100 * snap.wait_fraction:.0f}% of the time"
    )
    if res:
        head += (
            f"\nRSS {_mb(res.get('rss_bytes'))} MiB (peak {_mb(res.get('peak_rss_bytes'))}), "
            f"CPU {100 * res.get('cpu_utilisation', 0.0):.0f}% now, "
            f"{100 * res.get('mean_cpu_utilisation', 0.0):.0f}% mean of {res.get('cpu_count', '?')} cores, "
            f"{res.get('num_fds', 0)} open fds"
        )
    stages = Table(box=None, pad_edge=False)
    for name, justify in (
        ("stage", "left"),
        ("calls", "right"),
        ("total s", "right"),
        ("mean ms", "right"),
        ("share", "left"),
    ):
        stages.add_column(name, justify=justify)  # type: ignore[arg-type]
    for label, s in snap.stages.items():
        if s["calls"]:
            stages.add_row(
                label,
                str(int(s["calls"])),
                f"{s['seconds']:.2f}",
                f"{s['mean_ms']:.1f}",
                f"{_bar(s['share'])} {100 * s['share']:.0f}%",
            )
    workers = Table(box=None, pad_edge=False)
    for name in ("rank", "worker", "pid", "samples", "busy s", "RSS MiB", "mean CPU %", "fds"):
        workers.add_column(name, justify="right")
    for w in snap.workers:
        workers.add_row(
            str(w["rank"]),
            "main" if w["worker"] < 0 else str(w["worker"]),
            str(w["pid"]),
            str(w["samples"]),
            f"{w['busy_seconds']:.2f}",
            _mb(w["rss_bytes"]),
            "-" if w["mean_cpu_percent"] is None else f"{w['mean_cpu_percent']:.0f}",
            "-" if w["num_fds"] is None else str(w["num_fds"]),
        )
    errors = snap.errors
    parts: list[Any] = [head, stages, workers]
    if errors.get("skipped") or errors.get("substituted"):
        by = ", ".join(f"{k}: {v}" for k, v in sorted(errors["by_error"].items()))
        rows = "; ".join(
            f"item {r['item_idx']} ({r['shard']} row {r['row']}, {r['field']})" for r in errors["rows"][-3:]
        )
        parts.append(
            f"[red]{errors['skipped']} rows skipped, {errors['substituted']} substituted[/red] "
            f"({by}); last: {rows}"
        )
    return Panel(Group(*parts), title=title)
