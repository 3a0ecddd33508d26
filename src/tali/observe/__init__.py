"""Monitoring and profiling of the loading pipeline.

- :mod:`~tali.clock`: per-sample stage timers that ride inside samples.
- :mod:`~tali.observe.monitor`: :class:`Monitor`, the object a training loop reads.
- :mod:`~tali.observe.resources`: RSS / CPU / open fds of the process tree (psutil).
- :mod:`~tali.observe.panel`: the live ``rich`` panel.
- :mod:`~tali.observe.prometheus`: ``/metrics`` endpoint and textfile (prometheus_client).
- :mod:`~tali.observe.profile`: ``tali profile``'s engine (stages + cProfile + worker estimate).
"""

from tali.clock import STAGES, Stage, StageClock, timed
from tali.observe.monitor import Monitor, MonitorSnapshot, merge_snapshots
from tali.observe.resources import ProcessUsage, ResourceSampler

__all__ = [
    "STAGES",
    "Monitor",
    "MonitorSnapshot",
    "ProcessUsage",
    "ResourceSampler",
    "Stage",
    "StageClock",
    "merge_snapshots",
    "timed",
]
