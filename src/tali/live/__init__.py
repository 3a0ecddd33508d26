"""Live processing: aligned windows from a stream as it arrives (docs/LIVE.md)."""

from tali.live.live import LiveStats, LiveStream, live
from tali.live.source import ReconnectPolicy, TimedReader, open_source

__all__ = ["LiveStats", "LiveStream", "ReconnectPolicy", "TimedReader", "live", "open_source"]
