"""Real-time processing: aligned windows from a live stream as it arrives (``tali.live``, docs/LIVE.md)."""

from tali.realtime.live import LiveStats, LiveStream, live
from tali.realtime.source import ReconnectPolicy, TimedReader, open_source

__all__ = ["LiveStats", "LiveStream", "ReconnectPolicy", "TimedReader", "live", "open_source"]
