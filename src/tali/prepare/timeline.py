"""The prepared clip's video timeline, decided before encoding from the source's packets.

A demux pre-pass (no decoding but the first frame, for its display rotation) lists
every frame the source shows. From those timestamps alone this module decides
which frames the output keeps (the frame-rate cap), how long each is shown (so the
output ends where the source does), and which become keyframes: the first frame at
or after every ``keyframe_seconds`` of clip time, plus the frame the loader shows
as the thumbnail (the middle of the clip, :meth:`TaliTransform._thumbnail`), so
that every sample's thumbnail decodes one frame.

Times are integer ticks of the source video stream's time base, counted from its
first timestamp (the output's clip time 0), exactly as :mod:`tali.decode.index`
counts them; the middle is computed in exact ticks like the loader's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import numpy as np

from tali.decode.clip import Clip, decode_errors, open_clip
from tali.decode.index import clip_end_ticks, middle_frame
from tali.decode.video import rotation_of
from tali.errors import TaliDecodeError
from tali.prepare.settings import PrepareSettings

__all__ = ["FPS_CAP_SLACK", "LoaderView", "Timeline", "loader_view", "plan_timeline"]

_FIELD = "youtube_video_content"

#: The fps cap drops a frame only if it starts less than ``(1 - slack) / max_fps`` after
#: the last kept one. Timestamps rounded to a coarse time base are uneven (30 fps on
#: 1/1000 s ticks: 33 and 34 ms apart); without slack every 33 ms frame of a 30 fps
#: clip would go under a 30 fps cap (measured: 66 of 153 frames of the sample's VFR clip).
FPS_CAP_SLACK = 0.1


@dataclass(frozen=True)
class Timeline:
    """What the output's video track will be; ticks of ``time_base`` from clip time 0.

    ``pts`` int64 ``[F]``: the kept frames, ascending; ``durations`` int64 ``[F]``: how
    long each is shown (the last until the source's end); ``keyframes``: the ticks
    of the frames forced to be IDR frames; ``thumbnail``: the one the loader shows
    at the middle of the clip (one of ``keyframes``).
    """

    time_base: Fraction
    #: The source stream's first timestamp (its clip time 0), in its ticks.
    origin: int
    pts: np.ndarray
    durations: np.ndarray
    keyframes: frozenset[int]
    thumbnail: int
    #: Counter-clockwise degrees the source's display matrix turns its frames upright.
    rotation: int

    @property
    def end(self) -> int:
        return int(self.pts[-1] + self.durations[-1])

    def seconds(self, ticks: int) -> float:
        return float(ticks * self.time_base)


def _source_frames(clip: Clip) -> tuple[np.ndarray, int]:
    """Every shown frame's timestamp (ascending, unique, from the packets) and the
    rotation of the first decoded frame (the display matrix is the stream's)."""
    stream = clip.video
    stream.codec_context.thread_count = 1
    pts: list[int] = []
    rotation: int | None = None
    with decode_errors(clip.item_idx, what="index"):
        for packet in clip.container.demux(stream):
            clip.deadline.check()
            if packet.size == 0:
                continue
            if packet.pts is not None and not packet.is_discard:
                pts.append(int(packet.pts))
            if rotation is None:
                for frame in packet.decode():
                    rotation = rotation_of(frame)
                    break
        if rotation is None:
            rotation = next((rotation_of(f) for f in stream.codec_context.decode(None)), 0)
    return np.unique(np.asarray(pts, dtype=np.int64)), rotation


def plan_timeline(
    clip: Clip, settings: PrepareSettings, *, thumbnail: int | None = None, key_last: bool = False
) -> Timeline:
    """Decide the output timeline of ``clip`` (a fresh clip: this demuxes it to the end).

    For a second attempt, after :func:`loader_view` read the first output otherwise:
    ``thumbnail`` (ticks from clip time 0) overrides the predicted middle frame;
    ``key_last`` makes the last frame an IDR frame too. With B-frames the last frame
    shown is not the last one decoded, and mp4 gives every sample but the last decoded
    one the duration of its decode-time step: the loader then reads the last frame's
    duration from a neighbour's (a VFR clip ended 67 ms late). As an IDR frame it is
    decoded last (x264 ends the B-frame run before it) and keeps its planned duration.
    """
    time_base = Fraction(cast(Fraction, clip.video.time_base))  # checked non-None in Clip._probe
    # Clip time 0: the first decodable frame (the stream's start but for a track cut mid-GOP,
    # whose frames before its first keyframe no decoder shows).
    origin = clip.info.video_origin_ticks
    source, rotation = _source_frames(clip)
    source = source[source >= origin] - origin  # before clip time 0: no window reaches it
    if not source.size:
        raise TaliDecodeError(
            "clip has no video frames at or after its start", item_idx=clip.item_idx, field=_FIELD
        )
    with decode_errors(clip.item_idx, what="index"):
        end = clip_end_ticks(clip) - origin  # the loader's own rule for where the clip ends
    # The fps cap, on exact ticks.
    min_gap = math.ceil(Fraction(1 - FPS_CAP_SLACK) / (Fraction(settings.max_fps) * time_base))
    kept = [int(source[0])]
    for p in source[1:].tolist():
        if p - kept[-1] >= min_gap:
            kept.append(p)
    pts = np.asarray(kept, dtype=np.int64)
    durations = np.empty_like(pts)
    durations[:-1] = np.diff(pts)
    # The last frame is shown until the source's end, so the output ends there too (a
    # frame the cap dropped at the end is covered by the one before it).
    durations[-1] = end - pts[-1] if end > pts[-1] else (durations[:-1].max(initial=0) or 1)
    keyframes: set[int] = set()
    step = Fraction(settings.keyframe_seconds)
    boundary = 0  # ticks of the next whole multiple of keyframe_seconds
    for p in kept:
        if p >= boundary:
            keyframes.add(p)
            boundary = math.ceil((math.floor(p * time_base / step) + 1) * step / time_base)
    if thumbnail is None:
        # The loader's middle: (first pts + end) / 2 in exact ticks, the first pts being 0;
        # the frame shown then starts at or before it (integer ticks: at or before floor).
        middle = int(pts[-1] + durations[-1]) // 2
        thumbnail = int(pts[np.searchsorted(pts, middle, side="right") - 1])
    keyframes.add(thumbnail)
    if key_last:
        keyframes.add(kept[-1])
    return Timeline(
        time_base=time_base,
        origin=origin,
        pts=pts,
        durations=durations,
        keyframes=frozenset(keyframes),
        thumbnail=thumbnail,
        rotation=rotation,
    )


@dataclass(frozen=True)
class LoaderView:
    """How the loader reads an encoded clip: exact clip seconds."""

    #: Where the last frame stops being shown (``clip_end_ticks``).
    end: Fraction
    #: The frame shown at the middle of the clip (the thumbnail).
    thumbnail: Fraction
    thumbnail_is_keyframe: bool


def loader_view(data: bytes, *, item_idx: int | None = None) -> LoaderView:
    """The loader's reading of ``data``: its end, and the frame it shows as the thumbnail.

    The loader's own :func:`~tali.decode.index.middle_frame` (what ``TaliTransform``'s
    thumbnail decodes), run on the encoded output: prepare checks its plan with it, and
    the tests check this against the transform's own thumbnail.
    """
    with open_clip(data, item_idx=item_idx) as clip, decode_errors(item_idx, what="index"):
        time_base = Fraction(cast(Fraction, clip.video.time_base))
        origin = clip.info.video_origin_ticks
        end = clip_end_ticks(clip)
        frames, shown = middle_frame(clip)
        return LoaderView(
            end=(end - origin) * time_base,
            thumbnail=(int(frames.pts[shown]) - origin) * time_base,
            thumbnail_is_keyframe=bool(frames.keyframe[shown]),
        )
