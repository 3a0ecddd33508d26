"""Video family: the window's frames, the random frame and the thumbnail.

``youtube_content_video``      :class:`VideoFrames`: frames ``[N, 3, S, S]`` (uint8 or float, or N PIL),
                               ``pts_seconds`` float64 ``[N]`` (clip seconds), ``mask`` bool ``[N]``
                               (real slots), ``rotation`` (degrees the stored frames were turned),
                               ``output_seconds`` float64 ``[N]`` once a time map re-timed them.
``youtube_random_video_frame`` :class:`Frame`: pixels ``[3, S, S]``, ``pts_seconds`` (clip seconds)
``youtube_thumbnail_image``    :class:`Frame` (``pts_seconds`` NaN for a stored thumbnail)

One scan of the window's packets gives the real frame times both window outputs
are planned on; one decode pass serves the clip's frames and the random frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tali.clock import Stage, timed
from tali.config import FrameOutput, FrameSelection, TaliConfig
from tali.decode.index import frames_between, middle_frame
from tali.decode.video import (
    DecodedFrames,
    decode_frames_at,
    decode_keyframes_at,
    keyframes_inside,
    window_keyframes,
)
from tali.errors import TaliDecodeError
from tali.sample.base import ReadContext, blank_pixels, check_shape, pixels_out, shape_of
from tali.sample.image import decode_picture, picture_bytes
from tali.schema import Column, SubModality
from tali.window import FramePlan, plan_frames, plan_single_frame, select_slots

__all__ = ["SUBS", "Frame", "FramePlanner", "VideoFrames", "placeholder", "read", "retime"]

S = SubModality
SUBS = (S.YOUTUBE_CONTENT_VIDEO, S.YOUTUBE_RANDOM_VIDEO_FRAME, S.YOUTUBE_THUMBNAIL_IMAGE)
#: ``plan(candidate_seconds, num_frames, selection, rng) -> FramePlan``: which of the window's frames.
FramePlanner = Callable[[np.ndarray, int, FrameSelection, np.random.Generator], FramePlan]


@dataclass(frozen=True)
class VideoFrames:
    """The window's frames; see the module docstring for shapes and units."""

    frames: Any
    pts_seconds: torch.Tensor
    mask: torch.Tensor
    rotation: int = 0
    output_seconds: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = int(self.mask.shape[0])
        field = S.YOUTUBE_CONTENT_VIDEO.value
        count = len(self.frames) if isinstance(self.frames, list) else int(self.frames.shape[0])
        check_shape(self.mask.dtype == torch.bool and self.mask.ndim == 1, "mask must be bool [N]", field)
        check_shape(
            count == n and tuple(self.pts_seconds.shape) == (n,), f"{count} frames for {n} slots", field
        )
        if not isinstance(self.frames, list):
            check_shape(
                self.frames.ndim == 4 and self.frames.shape[1] == 3, "frames must be [N, 3, H, W]", field
            )
        if self.output_seconds is not None:
            check_shape(tuple(self.output_seconds.shape) == (n,), "output_seconds must be [N]", field)

    def __repr__(self) -> str:
        return f"VideoFrames(frames={shape_of(self.frames)}, real={int(self.mask.sum())}, rotation={self.rotation})"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "frames": self.frames,
            "pts_seconds": self.pts_seconds,
            "mask": self.mask,
            "rotation": self.rotation,
        }
        if self.output_seconds is not None:
            out["output_seconds"] = self.output_seconds
        return out


@dataclass(frozen=True)
class Frame:
    """One frame or image: pixels ``[3, S, S]`` (or PIL) and its clip time (NaN: not from the clip)."""

    pixels: Any
    pts_seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.pixels, torch.Tensor):
            check_shape(
                self.pixels.ndim == 3 and self.pixels.shape[0] == 3, "pixels must be [3, H, W]", "pixels"
            )

    def __repr__(self) -> str:
        return f"Frame(pixels={shape_of(self.pixels)}, pts_seconds={self.pts_seconds:.3f})"

    def to_dict(self) -> dict[str, Any]:
        return {"pixels": self.pixels, "pts_seconds": self.pts_seconds}


def read(ctx: ReadContext, plan: FramePlanner = plan_frames) -> dict[str, VideoFrames | Frame]:
    """The family's outputs the config asks for, from ``ctx.clip`` and ``ctx.window``."""
    cfg, clip, window = ctx.config, ctx.clip, ctx.window
    assert clip is not None and window is not None  # the transform opens both first
    vcfg = cfg.video
    rotate = vcfg.orientation == "display"
    want_video, want_frame = cfg.wants(S.YOUTUBE_CONTENT_VIDEO), cfg.wants(S.YOUTUBE_RANDOM_VIDEO_FRAME)
    out: dict[str, VideoFrames | Frame] = {}
    decoded = planned = frames = None
    if want_video or want_frame:
        with timed(Stage.VIDEO_DECODE):
            frames = frames_between(clip, window.start_seconds, window.end_seconds)
        candidates = frames.in_window(window.start_seconds, window.end_seconds)
        indices: list[int] = []
        if want_video and not vcfg.keyframes_only:
            planned = plan(
                frames.clip_seconds(candidates), vcfg.num_frames, vcfg.selection, ctx.rng("frames")
            )
            indices.extend(candidates[planned.indices].tolist() if candidates.size else [])
        if want_frame:
            single = plan_single_frame(candidates.size, ctx.rng("frame"))
            indices.extend(candidates[[single]].tolist() if candidates.size else [])
        if indices:
            with timed(Stage.VIDEO_DECODE):
                decoded = decode_frames_at(
                    clip,
                    frames,
                    indices,
                    size=vcfg.size,
                    interpolation=vcfg.interpolation,
                    threads=vcfg.decoder_threads,
                    rotate=rotate,
                )
        elif planned is not None or want_frame:
            raise TaliDecodeError(
                "clip has no video frames in the window",
                item_idx=clip.item_idx,
                field=str(Column.YOUTUBE_VIDEO_CONTENT),
            )
    if want_video:
        if planned is not None:
            assert decoded is not None
            n = vcfg.num_frames
            pixels, pts = decoded.pixels[:n], decoded.pts_seconds[:n]
            mask = planned.mask & decoded.found[:n]
            rotation = decoded.rotation
        else:
            assert frames is not None
            keys = window_keyframes(frames, window.start_seconds, window.end_seconds)
            slots, mask = select_slots(keys.size, vcfg.num_frames, vcfg.selection, ctx.rng("frames"))
            with timed(Stage.VIDEO_DECODE):
                got = decode_keyframes_at(
                    clip,
                    frames,
                    keys[slots] if keys.size else keys,
                    size=vcfg.size,
                    interpolation=vcfg.interpolation,
                    rotate=rotate,
                )
            pixels, pts, rotation = got.pixels, got.pts_seconds, got.rotation
            # The keyframe in force at the start stands in for a window without one:
            # its pixels fill the slots, but it is not a frame of the window (mask False).
            inside = keyframes_inside(frames, window.start_seconds, window.end_seconds) > 0
            mask = mask & got.found & inside
        out[S.YOUTUBE_CONTENT_VIDEO.value] = frames_output(pixels, pts, mask, rotation, vcfg.output)
    if want_frame:
        assert decoded is not None
        out[S.YOUTUBE_RANDOM_VIDEO_FRAME.value] = _single(decoded, -1, cfg.image.output)
    if cfg.wants(S.YOUTUBE_THUMBNAIL_IMAGE):
        out[S.YOUTUBE_THUMBNAIL_IMAGE.value] = _thumbnail(ctx)
    return out


def frames_output(
    pixels: np.ndarray, pts: np.ndarray, mask: np.ndarray, rotation: int, output: FrameOutput
) -> VideoFrames:
    """uint8 ``[N, 3, H, W]`` frames, their clip seconds and real-slot mask as the output type;
    padded slots repeat the last real frame and get its time too."""
    return VideoFrames(
        frames=pixels_out(pixels, output, channels_first=True),
        pts_seconds=torch.from_numpy(
            np.asarray(_pad_pts(np.asarray(pts, np.float64), mask), dtype=np.float64)
        ),
        mask=torch.from_numpy(np.asarray(mask, dtype=bool)),
        rotation=int(rotation),
    )


def _thumbnail(ctx: ReadContext) -> Frame:
    """A ``youtube_thumbnail`` column when the row has one; else the frame shown at
    the middle of the clip (deterministic: the same for every epoch and window)."""
    cfg, clip = ctx.config, ctx.clip
    assert clip is not None
    data = picture_bytes(ctx.row.get(str(Column.YOUTUBE_THUMBNAIL)))
    if data:
        pixels = decode_picture(cfg, data, item_idx=clip.item_idx, field=Column.YOUTUBE_THUMBNAIL)
        return Frame(pixels, float("nan"))
    with timed(Stage.VIDEO_DECODE):
        frames, shown = middle_frame(clip)
        how: dict[str, Any] = {
            "size": cfg.image.size,
            "interpolation": cfg.video.interpolation,
            "rotate": cfg.video.orientation == "display",
        }
        if cfg.video.thumbnail == "keyframe":
            # The scan starts at the keyframe in force at the middle: one frame to decode.
            key = int(np.flatnonzero(frames.keyframe[: shown + 1])[-1])
            decoded = decode_keyframes_at(clip, frames, [key], **how)
        else:
            decoded = decode_frames_at(clip, frames, [shown], threads=cfg.video.decoder_threads, **how)
    return _single(decoded, 0, cfg.image.output)


def placeholder(config: TaliConfig) -> dict[str, VideoFrames | Frame]:
    """Zeros of a good sample's shapes; no slot is real."""
    out: dict[str, VideoFrames | Frame] = {}
    size_v, size_i = config.video.size or 224, config.image.size or 224
    if config.wants(S.YOUTUBE_CONTENT_VIDEO):
        n = config.video.num_frames
        out[S.YOUTUBE_CONTENT_VIDEO.value] = VideoFrames(
            frames=blank_pixels((n, 3, size_v, size_v), config.video.output),
            pts_seconds=torch.zeros(n, dtype=torch.float64),
            mask=torch.zeros(n, dtype=torch.bool),
        )
    # The random frame is decoded in the clip frames' pass, at their size; the thumbnail at the image size.
    for sub, size in ((S.YOUTUBE_RANDOM_VIDEO_FRAME, size_v), (S.YOUTUBE_THUMBNAIL_IMAGE, size_i)):
        if config.wants(sub):
            out[sub.value] = Frame(blank_pixels((3, size, size), config.image.output), 0.0)
    return out


def retime(value: dict[str, Any], time_map: Any) -> None:
    """Frames keep their clip ``pts_seconds`` and gain ``output_seconds`` on the time map's
    output timeline (in place: the value may come from a cache)."""
    value["output_seconds"] = time_map.to_output(value["pts_seconds"])


def _pad_pts(pts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Padded slots repeat the last real frame; give them its timestamp too."""
    pts = pts.copy()
    last = np.nan
    for i in range(pts.size):
        if mask[i] and np.isfinite(pts[i]):
            last = pts[i]
        else:
            pts[i] = last
    return pts


def _single(decoded: DecodedFrames, index: int, output: FrameOutput) -> Frame:
    return Frame(
        pixels_out(decoded.pixels[index], output, channels_first=True), float(decoded.pts_seconds[index])
    )
