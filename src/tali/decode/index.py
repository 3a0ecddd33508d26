"""A clip's real frame timestamps and keyframes, read from its packets (demuxed, never decoded).

Frames are planned on these, not on a constant-rate grid built from the header's
frame rate: variable frame rate, B-frame reordering, edit lists and streams that
start late all give the timestamps the decoder will stamp on its frames, so a
planned frame is matched to a decoded one by equal timestamp (integer ticks).

Cheap by construction: only the packets of the span a sample needs are demuxed
(a 3 s window of a 30 s clip: ~100 packets, from the keyframe before it), and
the clip's length reads the last GOP only. The packets read are kept, so the
decoder is fed from them instead of demuxing the span a second time.

Times here are integer ticks of the video stream's ``time_base``; clip seconds
are ``(pts - origin) * time_base`` with ``origin`` the stream's first timestamp.
Every comparison of a time with a frame boundary is done in ticks: a bound in
seconds becomes the first tick at or after it (``ticks_at``), exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction

import av
import numpy as np

from tali.decode.clip import Clip, decode_errors
from tali.errors import TaliDecodeError

__all__ = [
    "FrameTimes",
    "audit_timestamps",
    "clip_end_ticks",
    "clip_seconds",
    "frames_between",
    "keyframe_seconds",
    "middle_frame",
    "ticks_at",
]

_FIELD = "youtube_video_content"

#: Packets read past the end of a span, looking for B-frames shown inside it
#: (they follow, in decode order, the frame they are shown before).
REORDER_LOOKAHEAD = 16
#: A last frame claiming more than this many typical frame intervals is given one:
#: a hostile or broken last sample duration (23 h) must not stretch the clip.
_MAX_LAST_FRAME_INTERVALS = 10


#: A bound within this many units in the last place of a tick is that tick: a window start
#: computed in floats (``0.76 * 3 = 2.2800000000000002``) means the frame at 2.28 s.
_BOUND_ULPS = 64


def ticks_at(seconds: float, time_base: Fraction, origin: int) -> int:
    """The first tick whose clip time is at or after ``seconds``, in exact arithmetic.

    A float bound that is a tick up to its own rounding error (``_BOUND_ULPS`` ulps:
    7e-12 s at 600 s, a millionth of a 90 kHz tick) counts as that tick, so a frame
    lying exactly on a bound computed in floats is inside it (a 25 fps window starting
    at ``2.2800000000000002`` dropped the frame at 2.28 s).
    """
    exact = Fraction(seconds) / time_base
    nearest = round(exact)
    if abs(exact - nearest) * time_base <= Fraction(_BOUND_ULPS * math.ulp(seconds)):
        return origin + nearest
    return origin + math.ceil(exact)


@dataclass(frozen=True)
class FrameTimes:
    """Frames of a span of a clip, in display order.

    ``pts`` int64 ``[F]`` (stream ticks, ascending, unique), ``keyframe`` bool ``[F]``;
    frame ``i`` is shown from ``pts[i]`` until ``pts[i + 1]`` (the last until ``end``).
    ``packets`` are the demuxed packets behind them, in decode order, from a keyframe
    (``at_end``: the stream ended after the last one).
    """

    pts: np.ndarray
    keyframe: np.ndarray
    time_base: Fraction
    origin: int
    end: int
    packets: list[av.Packet] = field(default_factory=list, repr=False)
    at_end: bool = False
    #: The span scanned for (``[lo, hi)`` ticks; ``None``: not a window's scan).
    window: tuple[int, int] | None = None

    def __len__(self) -> int:
        return int(self.pts.size)

    def clip_seconds(self, indices: np.ndarray | None = None) -> np.ndarray:
        """float64 clip seconds of the frames (all, or ``indices``)."""
        pts = self.pts if indices is None else self.pts[indices]
        return (pts - self.origin) * float(self.time_base)

    def stream_seconds(self, indices: np.ndarray) -> list[float]:
        """Stream seconds computed exactly as the decoder's frames are (``pts * float(tb)``),
        so equal timestamps give equal floats."""
        time_base = float(self.time_base)
        return [int(p) * time_base for p in self.pts[indices]]

    def starting_in(self, start_seconds: float, end_seconds: float) -> np.ndarray:
        """Indices of the frames whose display starts in ``[start, end)`` (clip seconds)."""
        lo = ticks_at(start_seconds, self.time_base, self.origin)
        hi = ticks_at(end_seconds, self.time_base, self.origin)
        first, last = np.searchsorted(self.pts, [lo, hi], side="left")
        return np.arange(first, last)

    def shown_at_ticks(self, ticks: int | Fraction) -> int | None:
        """Index of the frame on screen at ``ticks`` (the last starting at or before it)."""
        i = int(np.searchsorted(self.pts, math.floor(ticks), side="right")) - 1
        return None if i < 0 or ticks >= self.end else i

    def of_window(self, indices: np.ndarray) -> np.ndarray:
        """bool per frame of ``indices``: it belongs to the scanned window, by its own time.

        A frame starting in the window does; so does the frame on screen at its start,
        if it is still showing by its own length: until the next frame, but at most
        ``_MAX_LAST_FRAME_INTERVALS`` typical intervals (a frame before a 360 s gap is
        not the picture of a window 350 s later). Without a window, every frame does.
        """
        indices = np.asarray(indices, dtype=np.int64)
        if self.window is None or not indices.size:
            return np.ones(indices.shape, dtype=bool)
        lo, hi = self.window
        pts = self.pts[indices]
        following = np.append(self.pts[1:], self.end)[indices]
        typical = max(int(np.median(np.diff(self.pts))), 1) if self.pts.size >= 2 else None
        length = following - pts
        if typical is not None:
            length = np.minimum(length, _MAX_LAST_FRAME_INTERVALS * typical)
        return (pts < hi) & (pts + length > lo)

    def in_window(self, start_seconds: float, end_seconds: float) -> np.ndarray:
        """The window's frames: those starting in ``[start, end)``; if none does (a window
        shorter than one frame interval), the frame on screen at ``start``."""
        inside = self.starting_in(start_seconds, end_seconds)
        if inside.size:
            return inside
        shown = self.shown_at_ticks(ticks_at(start_seconds, self.time_base, self.origin))
        return np.arange(0) if shown is None else np.array([shown])


def _typical_interval(pts: np.ndarray, stream: av.video.stream.VideoStream) -> int:
    if pts.size >= 2:
        return max(int(np.median(np.diff(pts))), 1)
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    if rate and stream.time_base:
        return max(round(1 / (Fraction(rate) * stream.time_base)), 1)
    return 1


def _time_base(clip: Clip) -> Fraction:
    time_base = clip.video.time_base
    if not time_base:
        raise TaliDecodeError("video stream has no time base", item_idx=clip.item_idx, field=_FIELD)
    return Fraction(time_base)


def _origin(clip: Clip) -> int:
    """Clip time 0 in ticks: the first decodable frame (``ClipInfo.video_origin_ticks``)."""
    return clip.info.video_origin_ticks


def _demux(clip: Clip, lo: int, hi: int | None, *, any_frame: bool = False) -> FrameTimes:
    """Packets from the keyframe at or before ``lo`` (``any_frame``: the packet, decode
    timestamps) until every frame starting before ``hi`` is read (``hi=None``: to the end)."""
    stream = clip.video
    time_base = _time_base(clip)
    origin = _origin(clip)

    def walk(seek_to: int) -> tuple[list[av.Packet], bool]:
        clip.container.seek(max(seek_to, 0), stream=stream, backward=True, any_frame=any_frame)
        packets: list[av.Packet] = []
        past = 0  # packets read since one started at or after ``hi``
        for packet in clip.container.demux(stream):
            clip.deadline.check()
            if packet.size == 0:
                return packets, True
            if past:
                if packet.is_keyframe or past > REORDER_LOOKAHEAD:
                    return packets, False
                past += 1
            packets.append(packet)
            # Decode timestamps only grow: once one reaches ``hi``, what follows is shown at
            # or after ``hi`` but for B-frames reordered before it (up to the next keyframe).
            # Not on pts: a frame claiming to be shown an hour late must not end the scan.
            stamp = packet.dts if packet.dts is not None else packet.pts
            if hi is not None and not past and stamp is not None and stamp >= hi:
                past = 1
        return packets, True

    packets, at_end = walk(lo)
    first = next((p.pts for p in packets if p.pts is not None), None)
    if first is not None and first > lo > origin and not any_frame:  # the seek overshot: start over
        packets, at_end = walk(origin)
    # A track cut mid-GOP: frames before its first keyframe are not the clip's (never decoded).
    floor = origin if clip.info.undecodable_lead_seconds else None
    shown = [
        (p.pts, p.is_keyframe, p.duration or 0)
        for p in packets
        if p.pts is not None and not p.is_discard and (floor is None or p.pts >= floor)
    ]
    shown.sort()
    pts = np.array([s[0] for s in shown], dtype=np.int64)
    keep = np.ones(pts.size, dtype=bool)
    keep[1:] = pts[1:] != pts[:-1]  # a repeated timestamp: the decoder shows one of them
    pts = pts[keep]
    keyframe = np.array([s[1] for s in shown], dtype=bool)[keep] if pts.size else np.zeros(0, bool)
    end = int(pts[-1]) if pts.size else origin
    if pts.size:
        typical = _typical_interval(pts, stream)
        last = int(shown[-1][2])
        end += last if 0 < last <= _MAX_LAST_FRAME_INTERVALS * typical else typical
    return FrameTimes(
        pts=pts,
        keyframe=keyframe,
        time_base=time_base,
        origin=origin,
        end=end,
        packets=packets,
        at_end=at_end,
    )


def clip_end_ticks(clip: Clip) -> int:
    """Where the clip's last frame stops being shown (ticks), read from its last GOP.

    Not the stream header's duration: a copy-cut clip's header runs past its last
    frame, and a hostile one claims hours. Cached on the clip.
    """
    cached = getattr(clip, "_end_ticks", None)
    if cached is not None:
        return int(cached)
    stream = clip.video
    with decode_errors(clip.item_idx, what="index"):
        # The last frame shown is among the last packets in decode order (B-frames are
        # reordered at most REORDER_LOOKAHEAD packets): read only those, from the index.
        entries = stream.index_entries
        count = len(entries)
        times = None
        if count > 2 * REORDER_LOOKAHEAD:
            times = _demux(clip, int(entries[count - 1 - REORDER_LOOKAHEAD].timestamp), None, any_frame=True)
        if times is None or not len(times):
            last = entries[count - 1].timestamp if count else (stream.duration or 0) + _origin(clip)
            times = _demux(clip, int(last), None)
    if not len(times):
        raise TaliDecodeError("clip has no video frames", item_idx=clip.item_idx, field=_FIELD)
    clip._end_ticks = times.end  # type: ignore[attr-defined]
    return times.end


def clip_seconds(clip: Clip, max_seconds: float | None = None) -> float:
    """The clip's length in seconds: from its first timestamp to where its last frame ends.

    ``max_seconds`` bounds it: a longer clip (hours of claimed timestamps in a 30 s
    row) raises ``TaliDecodeError`` instead of sizing every output by it.
    """
    end = clip_end_ticks(clip)
    seconds = float((end - _origin(clip)) * _time_base(clip))
    if seconds <= 0:
        raise TaliDecodeError(
            f"clip timestamps end before they start ({seconds:g} s)", item_idx=clip.item_idx, field=_FIELD
        )
    if max_seconds is not None and seconds > max_seconds:
        raise TaliDecodeError(
            f"clip timestamps span {seconds:g} s, over the {max_seconds:g} s limit "
            "(WindowConfig.max_clip_seconds)",
            item_idx=clip.item_idx,
            field=_FIELD,
        )
    return seconds


def frames_between(clip: Clip, start_seconds: float, end_seconds: float) -> FrameTimes:
    """The real frames of ``[start, end)`` (clip seconds) and the packets that decode them.

    Also lists the frames from the keyframe before ``start`` (so the frame on screen at
    ``start`` is known) and B-frames of the span that follow it in decode order.
    """
    origin = _origin(clip)
    time_base = _time_base(clip)
    with decode_errors(clip.item_idx, what="index"):
        lo = ticks_at(max(start_seconds, 0.0), time_base, origin)
        hi = ticks_at(max(end_seconds, start_seconds), time_base, origin)
        times = replace(_demux(clip, lo, max(hi, lo + 1)), window=(lo, max(hi, lo + 1)))
    if times.at_end:  # the scan read the last GOP: remember where the clip ends
        clip._end_ticks = times.end  # type: ignore[attr-defined]
    return times


def middle_frame(clip: Clip) -> tuple[FrameTimes, int]:
    """The frame on screen at the middle of the clip (the loader's thumbnail): a scan around
    the middle and the frame's index in it.

    The middle is ``(first pts + end) / 2`` in exact ticks: at 29.97 fps (time base 1/30000)
    it can be exactly a frame start, which float seconds can round either way. The scan
    starts a frame interval before it, so it lists the frame shown then (and, from the
    keyframe before, everything that frame is decoded from).
    """
    origin = _origin(clip)
    end = clip_end_ticks(clip)
    middle = Fraction(origin + end, 2)
    middle_seconds = float((middle - origin) * _time_base(clip))
    # To a frame interval past the middle: the frame shown then may start exactly at it.
    frames = frames_between(
        clip, max(middle_seconds - 1 / clip.info.fps, 0.0), middle_seconds + 1 / clip.info.fps
    )
    shown = frames.shown_at_ticks(middle)
    if shown is None:
        raise TaliDecodeError(
            "no frame is shown at the middle of the clip", item_idx=clip.item_idx, field=_FIELD
        )
    return frames, shown


def keyframe_seconds(clip: Clip) -> np.ndarray:
    """float64 clip seconds of every keyframe (sync sample) of the clip, ascending.

    One demux of the whole clip (packets only; the container index holds decode
    timestamps, not the presentation times frames are shown at). For keyframe-aligned
    windows: a window starting at one of these times decodes from its first frame.
    """
    origin = _origin(clip)
    with decode_errors(clip.item_idx, what="index"):
        times = _demux(clip, origin, None)
    return times.clip_seconds(np.flatnonzero(times.keyframe))


def audit_timestamps(
    clip: Clip, *, max_clip_seconds: float = 600.0, max_gap_seconds: float = 10.0
) -> list[str]:
    """What is wrong with a clip's video timestamps, from one demux (no decoding).

    Flags a composition offset (``pts - dts``) or a gap between consecutive frames of
    more than ``max_gap_seconds``, repeated timestamps, frames before the stream start,
    and frames spanning more than ``max_clip_seconds``. A clean clip gives ``[]``.
    """
    stream = clip.video
    time_base = _time_base(clip)
    origin = _origin(clip)
    problems: list[str] = []
    # A track cut mid-GOP starts at its first decodable frame (``video_origin_ticks``): seeking
    # to 0 there has no keyframe to land on (FFmpeg's EPERM), and the undecodable lead before
    # it is not a timestamp fault.
    lead = round(clip.info.undecodable_lead_seconds / float(time_base)) if time_base else 0
    with decode_errors(clip.item_idx, what="index"):
        clip.container.seek(max(origin, 0), stream=stream, backward=True, any_frame=False)
        pts, offsets, durations = [], [], []
        for packet in clip.container.demux(stream):
            clip.deadline.check()
            if packet.size == 0 or packet.pts is None or packet.is_discard:
                continue
            pts.append(packet.pts)
            durations.append(packet.duration or 0)
            if packet.dts is not None:
                offsets.append(packet.pts - packet.dts)
    if not pts:
        return ["no video frames"]
    longest = float(max(durations) * time_base)
    if longest > max_gap_seconds:
        problems.append(f"a frame claiming to last {longest:g} s")
    for name, claimed in (
        ("video stream", stream.duration and float(stream.duration * time_base)),
        ("container", clip.container.duration and clip.container.duration / av.time_base),
    ):
        frames_span = float((max(pts) - min(pts)) * time_base)
        if claimed and claimed > frames_span + max_gap_seconds:
            problems.append(f"the {name} claims {claimed:g} s, its frames span {frames_span:g} s")
    ordered = np.sort(np.asarray(pts, dtype=np.int64))
    worst_offset = float(max((abs(o) for o in offsets), default=0) * time_base)
    if worst_offset > max_gap_seconds:
        problems.append(f"a composition offset of {worst_offset:g} s (pts far from dts)")
    if ordered.size > 1:
        gap = float(int(np.diff(ordered).max()) * time_base)
        if gap > max_gap_seconds:
            problems.append(f"a gap of {gap:g} s between consecutive frames")
        if np.any(np.diff(ordered) == 0):
            problems.append("frames with the same timestamp")
    if int(ordered[0]) < origin - lead:
        start = origin - lead
        problems.append(f"frames {float((start - int(ordered[0])) * time_base):g} s before the stream start")
    span = float((int(ordered[-1]) - min(origin, int(ordered[0]))) * time_base)
    if span > max_clip_seconds:
        problems.append(f"frames span {span:g} s, over the {max_clip_seconds:g} s limit")
    return problems
