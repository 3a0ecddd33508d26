"""Decode only the frames a sample needs, scaled in FFmpeg's scaler.

One seek to the keyframe before the first wanted time, then a forward walk
over the packets that decodes only the GOPs showing a wanted time and stops
after the last one. Only the chosen frames are converted to RGB, at the output
size, by ``swscale`` (never on float tensors at full resolution). Peak memory
is a couple of decoded frames plus the outputs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from tali.decode.clip import Clip, decode_errors
from tali.decode.h264 import is_nonreference, nal_length_size
from tali.decode.index import FrameTimes, ticks_at
from tali.errors import TaliDecodeError

__all__ = [
    "DecodedFrames",
    "decode_frames_at",
    "decode_frames_played_at",
    "decode_keyframes_at",
    "keyframes_inside",
    "rotation_of",
    "scaled_size",
    "to_rgb",
    "window_keyframes",
]

_INTERPOLATION = {
    "bicubic": av.video.reformatter.Interpolation.BICUBIC,
    "bilinear": av.video.reformatter.Interpolation.BILINEAR,
    "area": av.video.reformatter.Interpolation.AREA,
}


@dataclass
class DecodedFrames:
    """RGB frames ``[N, 3, H, W]`` uint8 and the clip time (s) each was shown at."""

    pixels: np.ndarray
    pts_seconds: np.ndarray  # float64 [N]; NaN where no frame exists (past the clip end)
    found: np.ndarray  # bool [N]
    #: Video packets the decoder decoded (not skipped or never fed): the cost of these frames.
    decoded_packets: int = 0
    #: Non-reference packets of frames nobody asked for, left out of the decoder.
    skipped_packets: int = 0
    #: Counter-clockwise degrees applied to turn the frames upright (0: as stored).
    rotation: int = 0

    def __repr__(self) -> str:
        return f"DecodedFrames(pixels={tuple(self.pixels.shape)}, found={int(self.found.sum())})"


def scaled_size(width: int, height: int, size: int | None) -> tuple[int, int]:
    """Output of "short side to ``size``": ``(width, height)``, e.g. 640x360 -> 398x224."""
    if size is None:
        return width, height
    if width <= height:
        return size, max(size, round(height * size / width))
    return max(size, round(width * size / height)), size


_local = threading.local()


#: Reformatters kept per process, one per source geometry (see ``_reformatter``).
_MAX_REFORMATTERS = 8


def _reformatter(frame: av.VideoFrame) -> VideoReformatter:
    # A VideoReformatter keeps its SwsContext between calls with the same sizes;
    # frame.reformat() builds a new one (bicubic filter tables included) every
    # time. Measured on 640x360 -> 398x224 bicubic: 2.1-5.2 ms vs 0.54 ms a frame.
    # One per source geometry: clips of mixed sizes (360p next to 720p) would
    # otherwise rebuild it at every switch (0.2 ms each).
    # One set per process and thread. Scaling runs single-threaded (``threads=1`` in
    # to_rgb): a threaded SwsContext inherited through fork() would, when freed in
    # a DataLoader worker, join threads that do not exist there and hang forever.
    pid = os.getpid()
    if getattr(_local, "pid", None) != pid:
        _local.formatters, _local.pid = {}, pid
    formatters: dict[tuple[int, int, str], VideoReformatter] = _local.formatters
    key = (frame.width, frame.height, frame.format.name)
    formatter = formatters.get(key)
    if formatter is None:
        if len(formatters) >= _MAX_REFORMATTERS:
            formatters.pop(next(iter(formatters)))  # the oldest
        formatter = formatters[key] = VideoReformatter()
    return formatter


def rotation_of(frame: av.VideoFrame) -> int:
    """Counter-clockwise degrees (0, 90, 180, 270) that turn ``frame`` upright, from its
    display matrix (a phone clip tagged 90 is stored sideways)."""
    try:
        degrees = frame.rotation
    except (AttributeError, ValueError):
        return 0
    return (round((degrees or 0) / 90) % 4) * 90


def to_rgb(frame: av.VideoFrame, size: int | None, interpolation: str, *, rotate: bool = False) -> np.ndarray:
    """Scale the short side to ``size`` in swscale, convert to RGB, crop the centre
    square: uint8 ``[3, H, W]``, the layout a model takes. ``rotate``: turn the
    picture upright by its display matrix (after the crop: the centre square of a
    rotated frame is the rotated centre square).

    swscale writes planar RGB (``gbrp``), so the crop and the channel order are one
    copy of contiguous rows, with no interleave and no transpose after it (the
    two cost 0.7 ms a sample of 8 frames at 224). Measured against a float
    reference (4:4:4 upsampling, antialiased bicubic) on the sample clips:
    packed ``rgb24`` output is 0.64 ms a frame with mean error 1.7 levels (p99 7,
    chroma edges); ``gbrp`` is 0.48 ms with mean error 0.14 (p99 2), since
    swscale then filters chroma at full resolution instead of taking the nearest
    sample.

    ``size=None`` (no scaling) converts to packed ``rgb24`` and transposes instead:
    swscale's unscaled yuv420p -> gbrp path in the FFmpeg PyAV ships leaves the last
    columns black or wrong at widths with ``w % 16`` in 2..8 (854x480, 360x640),
    while its unscaled rgb24 path is exact at every width (equal to gbrp of the frame
    padded to a multiple of 32 columns; ``tests/test_decode_media.py``).
    """
    if size is None:
        packed = _reformatter(frame).reformat(
            frame, format="rgb24", interpolation=_INTERPOLATION[interpolation], threads=1
        )
        out = np.ascontiguousarray(packed.to_ndarray().transpose(2, 0, 1))
    else:
        out = _planar(frame, size, interpolation)
    if rotate:
        turns = rotation_of(frame) // 90
        if turns:
            out = np.ascontiguousarray(np.rot90(out, turns, axes=(1, 2)))
    return out


def _planar(frame: av.VideoFrame, size: int, interpolation: str) -> np.ndarray:
    width, height = scaled_size(frame.width, frame.height, size)
    planar = _reformatter(frame).reformat(
        frame,
        width=width,
        height=height,
        format="gbrp",
        interpolation=_INTERPOLATION[interpolation],
        threads=1,
    )
    top, left = (height - size) // 2, (width - size) // 2
    out = np.empty((3, size, size), dtype=np.uint8)
    for channel, plane_index in enumerate((2, 0, 1)):  # gbrp stores G, B, R
        plane = planar.planes[plane_index]
        # PyAV's planes are buffers; its stubs do not say so.
        rows = np.frombuffer(cast(Any, plane), dtype=np.uint8).reshape(height, plane.line_size)
        out[channel] = rows[top : top + size, left : left + size]
    return out


def _frame_seconds(frame: av.VideoFrame, time_base: float) -> float | None:
    # ``time_base`` as a float, computed once per stream: Fraction arithmetic on
    # every decoded frame measured ~3% of a sample's CPU.
    ts = frame.pts if frame.pts is not None else frame.dts
    return None if ts is None else ts * time_base


def _configure(clip: Clip, threads: int, keyframes_only: bool) -> None:
    ctx = clip.video.codec_context
    # Threads must be set before the decoder opens (first decode call).
    if not ctx.is_open:
        ctx.thread_count = threads
        ctx.thread_type = "AUTO" if threads != 1 else "SLICE"
    ctx.skip_frame = "NONKEY" if keyframes_only else "DEFAULT"


def _seek(clip: Clip, stream_seconds: float) -> None:
    stream = clip.video
    time_base = cast(Fraction, stream.time_base)  # checked non-None in Clip._probe
    target = int(max(stream_seconds, 0.0) / time_base)
    clip.container.seek(target, stream=stream, backward=True, any_frame=False)


def decode_frames_played_at(
    clip: Clip,
    times: Sequence[float],
    *,
    size: int | None,
    interpolation: str = "bicubic",
    threads: int = 1,
) -> DecodedFrames:
    """The frames displayed at ``times`` (clip seconds; any order, repeats allowed).

    A time past the last frame's display yields ``found=False`` and a copy of
    the last frame, so shapes never depend on the content.
    """
    requested = np.asarray(times, dtype=np.float64)
    if requested.size == 0:
        raise ValueError("need at least one time")
    info = clip.info
    order = np.argsort(requested, kind="stable")
    wanted = requested[order] + info.video_start_seconds  # stream seconds, ascending
    half_frame = 0.5 / info.fps

    def convert(frame: av.VideoFrame) -> np.ndarray:
        with decode_errors(clip.item_idx, what="convert"):
            return to_rgb(frame, size, interpolation)

    with decode_errors(clip.item_idx):
        _configure(clip, threads, keyframes_only=False)
        picked = _decode_sorted(clip, wanted, half_frame, convert, restart_from_zero=False)
        if picked is None:  # the seek landed after the first wanted time: start over
            picked = _decode_sorted(clip, wanted, half_frame, convert, restart_from_zero=True)
        if picked is None:
            raise TaliDecodeError(
                "clip timestamps start after the requested time",
                item_idx=clip.item_idx,
                field="youtube_video_content",
            )
    pixels, pts, decoded_packets = picked
    # Slots past the end repeat the last real frame (slots before the first: the first).
    return _unsort(clip, pixels, pts - info.video_start_seconds, order, decoded_packets, rotation=0)


class _Picker:
    """Assigns each wanted time (ascending stream seconds) the frame shown then,
    converted by ``convert`` as soon as it is settled.

    Frames arrive in display order; a wanted time is settled once a frame that
    starts after it arrives (the one before that was showing). Converting then,
    not after the walk, holds one decoded frame at a time instead of every chosen
    one (8 decoded 720p frames are 11 MB; their 224 crops 1.2 MB).
    """

    def __init__(self, wanted: list[float], convert: Callable[[av.VideoFrame], np.ndarray]) -> None:
        self.wanted, self.convert = wanted, convert
        self.pixels: list[np.ndarray | None] = [None] * len(wanted)
        self.pts = np.full(len(wanted), np.nan)
        self.prev: av.VideoFrame | None = None
        self.prev_pixels: np.ndarray | None = None  # prev, converted (once, when first settled)
        self.prev_t = -np.inf
        self.k = 0  # first unsettled wanted time

    @property
    def done(self) -> bool:
        return self.k == len(self.wanted)

    def _settle(self) -> None:
        if self.prev_pixels is None:
            # Callers settle only once ``prev`` holds a frame.
            self.prev_pixels = self.convert(cast(av.VideoFrame, self.prev))
        self.pixels[self.k], self.pts[self.k] = self.prev_pixels, self.prev_t

    def offer(self, frame: av.VideoFrame, t: float) -> None:
        n = len(self.wanted)
        while self.k < n and self.wanted[self.k] < t:
            if self.prev is not None:
                self._settle()
            self.k += 1
        if self.k < n:
            self.prev, self.prev_pixels, self.prev_t = frame, None, t

    def finish(self, half_frame: float) -> None:
        """End of stream: the last frame covers times up to one frame after it starts."""
        while self.k < len(self.wanted):
            if self.prev is not None and self.wanted[self.k] < self.prev_t + 2 * half_frame + 1e-6:
                self._settle()
            self.k += 1


#: Packets read past the last wanted time, looking for B-frames that display
#: before it (they follow the frame they are shown before, in decode order).
_REORDER_LOOKAHEAD = 16


class _NeededPackets:
    """Decodes only the packets that show a wanted time or that those depend on;
    counts what went through the decoder (``decoded``)."""

    def __init__(
        self,
        clip: Clip,
        wanted: list[float],
        source: FrameTimes | None = None,
        *,
        wanted_ticks: frozenset[int] | None = None,
    ) -> None:
        self.clip, self.wanted, self.source = clip, wanted, source
        self.ctx = clip.video.codec_context
        self.decoded = 0
        self.fed = False  # packets went into the decoder since it was last reset
        self.skipped = 0  # non-reference packets of unwanted frames, left out (``tali.decode.h264``)
        # Only exact timestamps say which frames are wanted; a time-based walk decodes all.
        self.wanted_ticks = wanted_ticks or frozenset()
        self.length_size = nal_length_size(clip.video) if wanted_ticks is not None else None

    def _packets(self) -> Iterator[av.Packet | None]:
        """Demuxed from the current position, or the packets an index scan already read
        (then ``None`` ends them: feed what is held and drain)."""
        if self.source is None:
            yield from self.clip.container.demux(self.clip.video)
            return
        yield from self.source.packets
        yield None

    def frames(self) -> Iterator[av.VideoFrame]:
        """The decoded frames, in display order.

        Decided on packet timestamps, before decoding. A GOP (a keyframe and the
        packets up to the next one) matters only if it holds the frame shown at the
        next wanted time ``w``: packets are held back, undecoded, until one starts
        after ``w`` (the GOP reaches ``w``: decode what is held, in order) or a
        keyframe starting at or before ``w`` arrives (nothing held can be shown at
        ``w`` or later, nor be a reference for what is: drop it). A packet that starts
        at or before a passed wanted time is a reordered B-frame that may be shown
        then: it and what is held before it (its possible references) are decoded.
        At the end the decoder is drained rather than fed more packets to push out
        the frames its reordering delay holds. With frames spaced wider than the
        keyframe interval (long windows, whole clips) most of the clip is never
        decoded, as with torchcodec's per-frame seeks, but without a seek and
        decoder flush per frame.
        """
        clip, wanted = self.clip, self.wanted
        time_base = float(cast(Fraction, clip.video.time_base))  # checked non-None in Clip._probe
        held: list[av.Packet] = []
        k, n = 0, len(wanted)  # wanted[k]: the first time no decoded packet starts after
        after = 0  # packets read since every wanted time was passed
        for packet in self._packets():
            clip.deadline.check()
            if packet is None or packet.size == 0:  # end: what is held may show the last times
                if k < n:
                    yield from self._feed(held)
                break
            t = None if packet.pts is None else packet.pts * time_base
            if k < n and packet.is_keyframe and t is not None and t <= wanted[k]:
                if self.fed:
                    # A jump over undecoded GOPs: the decoder starts clean at this keyframe.
                    # An open GOP's keyframe is a non-IDR I-frame, which resets nothing: the
                    # decoder kept the old GOP's references and reordering state and dropped
                    # or mixed up frames (31 of 32 whole-clip frames, x264 open-gop=1).
                    yield from self._restart()
                held = [packet]
                continue
            if k == n:
                after += 1
                if packet.is_keyframe or after > _REORDER_LOOKAHEAD:
                    break
            held.append(packet)
            # Decode what is held once this packet reaches the next wanted time, or is a
            # reordered B-frame shown at a passed one (what is held may be its references).
            if t is None or (k < n and t > wanted[k]) or (k > 0 and t <= wanted[k - 1]):
                yield from self._feed(held)
                held = []
                while t is not None and k < n and wanted[k] < t:
                    k += 1
        clip.deadline.check()
        yield from self.ctx.decode(None)  # drain: the frames held back for reordering

    def _restart(self) -> Iterator[av.VideoFrame]:
        """Drain the frames the decoder holds back for reordering, then reset it."""
        self.clip.deadline.check()
        yield from self.ctx.decode(None)
        self.ctx.flush_buffers()
        self.fed = False

    def _feed(self, packets: list[av.Packet]) -> Iterator[av.VideoFrame]:
        deadline = self.clip.deadline
        self.fed = self.fed or bool(packets)
        for packet in packets:
            # Checked where the time goes: before each decode, not once a demuxed packet
            # (held GOPs decode here in one go; a 0.05 s budget used to stop after 1 s).
            deadline.check()
            if (
                self.length_size is not None
                and packet.pts not in self.wanted_ticks
                and is_nonreference(packet, self.length_size)
            ):
                self.skipped += 1  # no frame is predicted from it and it is not wanted
                continue
            self.decoded += 1
            yield from self.ctx.decode(packet)


def _decode_sorted(
    clip: Clip,
    wanted: np.ndarray,
    half_frame: float,
    convert: Callable[[av.VideoFrame], np.ndarray],
    *,
    restart_from_zero: bool,
) -> tuple[list[np.ndarray | None], np.ndarray, int] | None:
    """Walk the decoder forward, assigning each wanted time the frame shown then
    (converted; ``None`` where no frame is shown).

    Returns ``None`` if the first decoded frame is already later than the first
    wanted time (a seek that overshot); the caller retries from the start.
    Also returns how many packets went through the decoder.
    """
    _seek(clip, clip.info.video_start_seconds if restart_from_zero else wanted[0])
    times = wanted.tolist()  # Python floats: numpy scalar indexing per packet costs
    picker = _Picker(times, convert)
    packets = _NeededPackets(clip, times)
    time_base = float(cast(Fraction, clip.video.time_base))  # checked non-None in Clip._probe
    first = True
    for frame in packets.frames():  # checks the deadline before each decoded packet
        t = _frame_seconds(frame, time_base)
        if t is None:
            continue
        if first and t > wanted[0] + half_frame and not restart_from_zero:
            return None
        first = False
        picker.offer(frame, t)
        if picker.done:
            break
    else:
        picker.finish(half_frame)
    return picker.pixels, picker.pts, packets.decoded


def decode_frames_at(
    clip: Clip,
    frames: FrameTimes,
    indices: Sequence[int] | np.ndarray,
    *,
    size: int | None,
    interpolation: str = "bicubic",
    threads: int = 1,
    rotate: bool = True,
    skip_nonreference: bool = True,
) -> DecodedFrames:
    """Frames ``indices`` of ``frames`` (a :func:`~tali.decode.index.frames_between` scan;
    any order, repeats allowed), decoded from the packets the scan read.

    ``skip_nonreference`` leaves out H.264 packets that are neither wanted nor a
    reference (:mod:`tali.decode.h264`): the same pixels, fewer packets decoded.

    A slot is ``found`` only if a decoded frame carries exactly the planned timestamp,
    so a frame shown at another time (hostile timestamps, a broken GOP) is never
    reported as the planned one: its slot is padding (``found=False``, ``pts`` NaN,
    pixels of the nearest found slot).
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0 or not len(frames):
        raise TaliDecodeError(
            "clip has no decodable video frames", item_idx=clip.item_idx, field="youtube_video_content"
        )
    order = np.argsort(frames.pts[indices], kind="stable")
    wanted = frames.stream_seconds(indices[order])  # ascending
    rotation = [0]

    def convert(frame: av.VideoFrame) -> np.ndarray:
        with decode_errors(clip.item_idx, what="convert"):
            if rotate:
                rotation[0] = rotation_of(frame)
            return to_rgb(frame, size, interpolation, rotate=rotate)

    with decode_errors(clip.item_idx):
        _configure(clip, threads, keyframes_only=False)
        ctx = clip.video.codec_context
        if ctx.is_open:
            ctx.flush_buffers()  # the scan's packets start at a keyframe: a clean decoder
        picker = _Picker(wanted, convert)
        wanted_ticks = frozenset(int(p) for p in frames.pts[indices]) if skip_nonreference else None
        packets = _NeededPackets(clip, wanted, source=frames, wanted_ticks=wanted_ticks)
        time_base = float(cast(Fraction, clip.video.time_base))  # checked non-None in Clip._probe
        for frame in packets.frames():  # checks the deadline before each decoded packet
            t = _frame_seconds(frame, time_base)
            if t is None:
                continue
            picker.offer(frame, t)
            if picker.done:
                break
        else:
            picker.finish(0.0)
    # Real only if its own time is in the scanned window (a frame held on screen through
    # a 360 s gap is not the window's), besides carrying the planned timestamp.
    own = frames.of_window(indices[order])
    exact = np.array(
        [p is not None and t == w and ok for p, t, w, ok in zip(picker.pixels, picker.pts, wanted, own)]
    )
    pixels = [p if ok else None for p, ok in zip(picker.pixels, exact)]
    pts = np.where(exact, frames.clip_seconds(indices[order]), np.nan)
    # Nothing real (a window inside a gap): the decoded frame is still the padding's picture.
    fill = next((p for p in picker.pixels if p is not None), None)
    return _unsort(clip, pixels, pts, order, packets.decoded, rotation[0], packets.skipped, fill=fill)


def _unsort(
    clip: Clip,
    pixels: list[np.ndarray | None],
    pts: np.ndarray,
    order: np.ndarray,
    decoded: int,
    rotation: int,
    skipped: int = 0,
    *,
    fill: np.ndarray | None = None,
) -> DecodedFrames:
    """Slots back in request order; a slot without a frame takes the pixels of the one
    before it (the first found for leading ones; ``fill`` if none is), ``found=False``
    and NaN ``pts``."""
    found = np.array([p is not None for p in pixels])
    if not found.any() and fill is None:
        raise TaliDecodeError(
            "clip has no decodable video frames", item_idx=clip.item_idx, field="youtube_video_content"
        )
    last = cast(np.ndarray, next((p for p in pixels if p is not None), fill))
    filled = []
    for p in pixels:
        last = p if p is not None else last
        filled.append(last)
    out = np.empty((len(pixels),) + last.shape, dtype=np.uint8)
    result_pts = np.full(len(pixels), np.nan)
    result_found = np.zeros(len(pixels), dtype=bool)
    for slot, src in enumerate(order):
        out[src] = filled[slot]
        result_pts[src] = pts[slot] if found[slot] else np.nan
        result_found[src] = found[slot]
    return DecodedFrames(
        pixels=out,
        pts_seconds=result_pts,
        found=result_found,
        decoded_packets=decoded,
        skipped_packets=skipped,
        rotation=rotation,
    )


def decode_keyframes_at(
    clip: Clip,
    frames: FrameTimes,
    indices: Sequence[int] | np.ndarray,
    *,
    size: int | None,
    interpolation: str = "bicubic",
    rotate: bool = True,
) -> DecodedFrames:
    """Keyframes ``indices`` of ``frames``, decoding those packets only.

    Codec-independent: only the planned keyframe packets are fed to a flushed
    decoder (a keyframe needs no other), so no decoder option has to be honoured
    (libdav1d and the VP9 decoders ignore ``skip_frame`` once open). A decoded frame
    counts only if the decoder itself calls it a keyframe and it carries the planned
    timestamp; anything else is padding (``found=False``).
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        raise TaliDecodeError(
            "no keyframe at or before the window", item_idx=clip.item_idx, field="youtube_video_content"
        )
    order = np.argsort(frames.pts[indices], kind="stable")
    wanted = [int(p) for p in frames.pts[indices[order]]]
    wanted_set = set(wanted)
    by_pts: dict[int, np.ndarray] = {}
    rotation = 0
    decoded = 0
    with decode_errors(clip.item_idx):
        _configure(clip, threads=1, keyframes_only=False)
        ctx = clip.video.codec_context
        if ctx.is_open:
            ctx.flush_buffers()

        def take(out: list[av.VideoFrame]) -> None:
            nonlocal rotation
            for frame in out:
                clip.deadline.check()
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts in wanted_set and pts not in by_pts and _is_keyframe(frame):
                    if rotate:
                        rotation = rotation_of(frame)
                    by_pts[pts] = to_rgb(frame, size, interpolation, rotate=rotate)

        for packet in frames.packets:
            clip.deadline.check()
            if packet.is_keyframe and packet.pts in wanted_set and not packet.is_discard:
                decoded += 1
                # Each keyframe alone on a reset decoder: an open GOP's keyframes are non-IDR
                # I-frames, and fed one after another the H.264 decoder output 2 of 10.
                take(ctx.decode(packet))
                take(ctx.decode(None))
                ctx.flush_buffers()
    pixels = [by_pts.get(p) for p in wanted]
    pts = np.where([p is not None for p in pixels], frames.clip_seconds(indices[order]), np.nan)
    return _unsort(clip, pixels, pts, order, decoded, rotation)


def _is_keyframe(frame: av.VideoFrame) -> bool:
    try:
        # PyAV 18 gives ``pict_type`` as a plain int (so this is False there); older
        # releases an enum with a ``name``.
        return bool(frame.key_frame) or getattr(frame.pict_type, "name", None) == "I"
    except (AttributeError, ValueError):
        return bool(frame.key_frame)


def window_keyframes(frames: FrameTimes, start_seconds: float, end_seconds: float) -> np.ndarray:
    """Indices of the keyframes starting in ``[start, end)``; if none, the keyframe in
    force at ``start`` (the last one before it); empty if there is none. Use
    :func:`keyframes_inside` to tell the two apart."""
    inside = frames.starting_in(start_seconds, end_seconds)
    keys = inside[frames.keyframe[inside]]
    if keys.size:
        return keys
    first = int(np.searchsorted(frames.pts, ticks_at(start_seconds, frames.time_base, frames.origin)))
    before = np.flatnonzero(frames.keyframe[:first])
    return before[-1:]


def keyframes_inside(frames: FrameTimes, start_seconds: float, end_seconds: float) -> int:
    """How many keyframes start in ``[start, end)`` (0: :func:`window_keyframes` is a stand-in)."""
    inside = frames.starting_in(start_seconds, end_seconds)
    return int(frames.keyframe[inside].sum())
