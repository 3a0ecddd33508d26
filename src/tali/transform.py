"""One TALI row in, one aligned sample out.

Every clip-based output (frames, the single frame, audio, subtitles) is cut
from ONE window ``[t0, t0 + d]``; the sample records ``t0``, ``d``, the frame
timestamps and the chosen language so each output can be traced back. The
mp4 is opened once per sample and shared by the video and audio decoders.

A sample is a dict keyed by sub-modality name; each value is a dict::

    youtube_content_video    frames [N, 3, S, S] uint8, pts_seconds [N] float64, mask [N] bool
    youtube_random_video_frame / youtube_thumbnail_image / wikipedia_caption_image
                             pixels [3, S, S] uint8 (+ pts_seconds for frames from the clip)
    youtube_content_audio    waveform [round(d * sr)] float32, sample_rate, valid_samples, missing
    *_text                   text: str (list[str] when every language is asked for), language
    window                   start_seconds, duration_seconds, clip_seconds (clip timeline)

plus ``item_idx``, ``key`` (the row's position in its source) and ``epoch``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image

from tali.config import FrameOutput, TaliConfig, WindowConfig
from tali.decode.audio import decode_audio_window, silent_window
from tali.decode.clip import Clip, open_clip
from tali.decode.image import decode_image
from tali.decode.index import clip_seconds, frames_between, keyframe_seconds, middle_frame
from tali.decode.subtitles import parse_subtitles
from tali.decode.video import (
    DecodedFrames,
    decode_frames_at,
    decode_keyframes_at,
    keyframes_inside,
    window_keyframes,
)
from tali.errors import TaliDataError, TaliDecodeError, TaliSchemaError
from tali.observe.clock import Stage, timed
from tali.schema import Column, ImageField, SubModality
from tali.text import caption, choose_language, main_body, read_wit, title
from tali.window import FramePlan, Window, choose_window, plan_frames, plan_single_frame, select_slots

__all__ = ["FramePlanner", "TaliTransform", "WindowChooser", "default_choose", "sample_rng_for"]

S = SubModality
WindowChooser = Callable[[WindowConfig, float, Callable[[str], np.random.Generator]], Window]
FramePlanner = Callable[[np.ndarray, int, str, np.random.Generator], FramePlan]


def sample_rng_for(seed: int, epoch: int, key: int, purpose: str) -> np.random.Generator:
    """An independent generator per decision, so adding a sub-modality to a config
    never changes the choices made for the others."""
    tag = zlib.crc32(purpose.encode())
    return np.random.default_rng(np.random.SeedSequence([int(seed) & (2**63 - 1), int(epoch), int(key), tag]))


def _pixels_out(array: np.ndarray, output: FrameOutput, *, channels_first: bool = False) -> Any:
    """uint8 ``[..., H, W, 3]`` (images) or ``[..., 3, H, W]`` (decoded video
    frames, ``channels_first``) to the configured output: CHW tensor or PIL."""
    if output == "pil":
        hwc = np.moveaxis(array, -3, -1) if channels_first else array
        if hwc.ndim == 4:
            return [Image.fromarray(np.ascontiguousarray(a)) for a in hwc]
        return Image.fromarray(np.ascontiguousarray(hwc))
    chw = array if channels_first else np.moveaxis(array, -1, -3)
    tensor = torch.from_numpy(np.ascontiguousarray(chw))
    if output == "float":
        return tensor.to(torch.float32).div_(255.0)
    return tensor


#: Rows whose keyframe times a transform keeps (``start="keyframe"``): ~30 MB at most.
_KEYFRAME_CACHE_ROWS = 100_000


def default_choose(
    config: WindowConfig, clip_seconds: float, rng: Callable[[str], np.random.Generator]
) -> Window:
    """The window choice of :class:`TaliTransform` (``choose=`` replaces it, e.g. with
    :meth:`tali.augment.Augment.choose`); ``rng(purpose)`` is the sample's generator."""
    return choose_window(config, clip_seconds, rng("window"))


class TaliTransform:
    """Row dict -> sample dict, for one :class:`~tali.config.TaliConfig`. Picklable.

    ``choose(window_config, clip_seconds, rng) -> Window`` picks the window every
    clip-based output is cut from (default: :func:`default_choose`);
    ``plan(candidate_seconds, num_frames, selection, rng) -> FramePlan`` picks the
    frames among the window's (default: :func:`tali.window.plan_frames`).
    """

    def __init__(
        self,
        config: TaliConfig | None = None,
        *,
        durations: Mapping[int, float] | None = None,
        choose: WindowChooser | None = None,
        plan: FramePlanner | None = None,
    ) -> None:
        self.config = config or TaliConfig()
        self._keyframe_cache: dict[tuple[Any, ...], np.ndarray] = {}
        #: Clip seconds by item_idx (``tali.data.durations``): the window of a config that
        #: does not open the clip (text only); without it, ``nominal_clip_seconds``.
        self.durations = durations
        self.choose = choose or default_choose
        self.plan = plan or plan_frames

    def __repr__(self) -> str:
        return f"TaliTransform(modalities={[s.value for s in self.config.modalities]})"

    def __call__(self, row: Mapping[str, Any], *, key: int, epoch: int = 0) -> dict[str, Any]:
        cfg = self.config
        item_idx = row.get(str(Column.ITEM_IDX))
        if item_idx is not None and not isinstance(item_idx, int):
            raise TaliSchemaError("item_idx must be an integer", item_idx=None, field=str(Column.ITEM_IDX))

        def rng(purpose: str) -> np.random.Generator:
            return sample_rng_for(cfg.seed, epoch, key, purpose)

        # A null item_idx becomes the sentinel -1, so a batch's item_idx stays int64 [B].
        sample: dict[str, Any] = {
            "item_idx": -1 if item_idx is None else item_idx,
            "key": key,
            "epoch": epoch,
        }
        window: Window | None = None
        if cfg.needs_clip:
            data = _field(row, Column.YOUTUBE_VIDEO_CONTENT, item_idx)
            with timed(Stage.OPEN):
                clip = open_clip(
                    data,
                    item_idx=item_idx,
                    max_seconds=cfg.video.max_decode_seconds,
                    limits=cfg.video.clip_limits,
                    decoder_options={"skip_loop_filter": "all"} if cfg.video.skip_loop_filter else None,
                )
            with clip:
                length = clip_seconds(clip, cfg.window.max_clip_seconds)
                if cfg.window.start == "keyframe":  # the built-in choice, on the clip's keyframes
                    keyframes = self._keyframes(clip, data)
                    window = choose_window(cfg.window, length, rng("window"), keyframes)
                else:
                    window = self.choose(cfg.window, length, rng)
                sample.update(self._from_clip(clip, window, row, rng))
        elif cfg.wants(S.YOUTUBE_SUBTITLE_TEXT):
            known = self.durations.get(item_idx) if self.durations and item_idx is not None else None
            length = min(known, cfg.window.max_clip_seconds) if known else cfg.window.nominal_clip_seconds
            window = self.choose(cfg.window, length, rng)
        if window is not None:
            sample["window"] = {
                "start_seconds": window.start_seconds,
                "duration_seconds": window.duration_seconds,
                "clip_seconds": window.clip_seconds,
            }
        if cfg.wants(S.YOUTUBE_SUBTITLE_TEXT):
            assert window is not None
            with timed(Stage.TEXT):
                sample[S.YOUTUBE_SUBTITLE_TEXT.value] = self._subtitles(row, window, item_idx)
        if cfg.wants(S.WIKIPEDIA_CAPTION_IMAGE):
            image = _field(row, Column.IMAGE, item_idx)
            data = image.get(str(ImageField.BYTES)) if isinstance(image, Mapping) else image
            with timed(Stage.IMAGE_DECODE):
                pil = decode_image(
                    data,
                    size=cfg.image.size,
                    max_pixels=cfg.image.max_pixels,
                    max_jpeg_scans=cfg.image.max_jpeg_scans,
                    max_seconds=cfg.image.max_decode_seconds,
                    item_idx=item_idx,
                    field=str(Column.IMAGE),
                )
                pixels = _pixels_out(np.asarray(pil), cfg.image.output)
            sample[S.WIKIPEDIA_CAPTION_IMAGE.value] = {"pixels": pixels}
        if cfg.wants(S.WIKIPEDIA_CAPTION_TEXT, S.WIKIPEDIA_TITLE_TEXT, S.WIKIPEDIA_MAIN_BODY_TEXT):
            with timed(Stage.TEXT):
                sample.update(self._wikipedia_texts(row, item_idx, rng("language")))
        for sub, column in (
            (S.YOUTUBE_TITLE_TEXT, Column.YOUTUBE_TITLE_TEXT),
            (S.YOUTUBE_DESCRIPTION_TEXT, Column.YOUTUBE_DESCRIPTION_TEXT),
        ):
            if cfg.wants(sub):
                value = row.get(str(column))  # plain strings: too cheap to time
                if value is not None and not isinstance(value, str):
                    raise TaliSchemaError(f"{column} must be text", item_idx=item_idx, field=str(column))
                _check_length(value or "", cfg.text.max_text_chars, item_idx, str(column))
                sample[sub.value] = {"text": value or ""}
        return sample

    # -- clip ---------------------------------------------------------------------------------

    def _from_clip(self, clip: Clip, window: Window, row: Mapping[str, Any], rng) -> dict[str, Any]:
        cfg = self.config
        out: dict[str, Any] = {}
        vcfg = cfg.video
        rotate = vcfg.orientation == "display"
        want_video = cfg.wants(S.YOUTUBE_CONTENT_VIDEO)
        want_frame = cfg.wants(S.YOUTUBE_RANDOM_VIDEO_FRAME)
        # One scan of the window's packets gives the real frame times every output is
        # planned on; one decode pass over those packets serves the clip's frames and
        # the single random frame.
        decoded = None
        plan = None
        frames = None
        if want_video or want_frame:
            with timed(Stage.VIDEO_DECODE):
                frames = frames_between(clip, window.start_seconds, window.end_seconds)
            candidates = frames.in_window(window.start_seconds, window.end_seconds)
            indices: list[int] = []
            if want_video and not vcfg.keyframes_only:
                plan = self.plan(
                    frames.clip_seconds(candidates), vcfg.num_frames, vcfg.selection, rng("frames")
                )
                indices.extend(candidates[plan.indices].tolist() if candidates.size else [])
            if want_frame:
                single = plan_single_frame(candidates.size, rng("frame"))
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
            elif plan is not None or want_frame:
                raise TaliDecodeError(
                    "clip has no video frames in the window",
                    item_idx=clip.item_idx,
                    field=str(Column.YOUTUBE_VIDEO_CONTENT),
                )
        if want_video:
            if plan is not None:
                assert decoded is not None
                n = vcfg.num_frames
                pixels, pts = decoded.pixels[:n], decoded.pts_seconds[:n]
                mask = plan.mask & decoded.found[:n]
                rotation = decoded.rotation
            else:
                assert frames is not None
                keys = window_keyframes(frames, window.start_seconds, window.end_seconds)
                slots, mask = select_slots(keys.size, vcfg.num_frames, vcfg.selection, rng("frames"))
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
            out[S.YOUTUBE_CONTENT_VIDEO.value] = {
                "frames": _pixels_out(pixels, vcfg.output, channels_first=True),
                "pts_seconds": torch.from_numpy(np.asarray(_pad_pts(pts, mask), dtype=np.float64)),
                "mask": torch.from_numpy(np.asarray(mask, dtype=bool)),
                "rotation": rotation,
            }
        if want_frame:
            assert decoded is not None
            out[S.YOUTUBE_RANDOM_VIDEO_FRAME.value] = _single(decoded, -1, cfg.image.output)
        if cfg.wants(S.YOUTUBE_THUMBNAIL_IMAGE):
            out[S.YOUTUBE_THUMBNAIL_IMAGE.value] = self._thumbnail(clip, row)
        if cfg.wants(S.YOUTUBE_CONTENT_AUDIO):
            if clip.audio is None and cfg.audio.on_missing == "zeros":
                audio = silent_window(window.start_seconds, window.duration_seconds, cfg.audio.sample_rate)
            else:
                with timed(Stage.AUDIO_DECODE):
                    audio = decode_audio_window(
                        clip,
                        window.start_seconds,
                        window.duration_seconds,
                        cfg.audio.sample_rate,
                        downmix=cfg.audio.downmix,
                    )
            out[S.YOUTUBE_CONTENT_AUDIO.value] = {
                "waveform": torch.from_numpy(audio.samples),
                "sample_rate": audio.sample_rate,
                "valid_samples": audio.valid_samples,
                "missing": audio.missing,
            }
        return out

    def _keyframes(self, clip: Clip, data: Any) -> np.ndarray:
        """The clip's keyframe times (one demux of its packets), kept per row in this process:
        ~0.3 KB a clip, and every later epoch of the row skips the demux."""
        key = (clip.item_idx, len(data), zlib.crc32(memoryview(data)[:4096]))
        cache = self._keyframe_cache
        times = cache.get(key)
        if times is None:
            times = keyframe_seconds(clip)
            if len(cache) >= _KEYFRAME_CACHE_ROWS:
                cache.pop(next(iter(cache)))  # the oldest
            cache[key] = times
        return times

    def _thumbnail(self, clip: Clip, row: Mapping[str, Any]) -> dict[str, Any]:
        """A ``youtube_thumbnail`` column when the row has one; else the frame shown at
        the middle of the clip (deterministic: the same for every epoch and window)."""
        cfg = self.config
        stored = row.get(str(Column.YOUTUBE_THUMBNAIL))
        data = stored.get(str(ImageField.BYTES)) if isinstance(stored, Mapping) else stored
        if data:
            with timed(Stage.IMAGE_DECODE):
                pil = decode_image(
                    data,
                    size=cfg.image.size,
                    max_pixels=cfg.image.max_pixels,
                    max_jpeg_scans=cfg.image.max_jpeg_scans,
                    max_seconds=cfg.image.max_decode_seconds,
                    item_idx=clip.item_idx,
                    field=str(Column.YOUTUBE_THUMBNAIL),
                )
            return {"pixels": _pixels_out(np.asarray(pil), cfg.image.output), "pts_seconds": float("nan")}
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

    # -- text ---------------------------------------------------------------------------------

    def _subtitles(self, row: Mapping[str, Any], window: Window, item_idx: int | None) -> dict[str, Any]:
        cfg = self.config
        start = _start_seconds(row, item_idx)
        # Never past the clip's end: no frame or sound is aligned with a later line.
        if cfg.text.subtitles == "clip":
            lo, hi = start, start + window.clip_seconds
        else:
            end = min(window.end_seconds, window.clip_seconds)
            lo, hi = start + window.start_seconds, start + end
        chosen = parse_subtitles(
            row.get(str(Column.YOUTUBE_SUBTITLE_TEXT)),
            item_idx=item_idx,
            max_bytes=cfg.text.max_subtitle_bytes,
            max_nodes=cfg.text.max_subtitle_nodes,
            max_aliases=cfg.text.max_subtitle_aliases,
            between=(lo, hi),
        )
        return {
            "text": " ".join(line.text for line in chosen if line.text),
            "num_lines": len(chosen),
        }

    def _wikipedia_texts(self, row: Mapping[str, Any], item_idx: int | None, rng) -> dict[str, Any]:
        cfg = self.config
        wit = read_wit(row.get(str(Column.WIT_FEATURES)), item_idx=item_idx)
        k = choose_language(wit, cfg.text, rng)
        languages = wit["language"]
        indices = range(len(languages)) if k is None else [k]
        out: dict[str, Any] = {}
        for sub, build in (
            (S.WIKIPEDIA_CAPTION_TEXT, caption),
            (S.WIKIPEDIA_TITLE_TEXT, title),
            (S.WIKIPEDIA_MAIN_BODY_TEXT, main_body),
        ):
            if not cfg.wants(sub):
                continue
            texts = [build(wit, i) for i in indices]
            for text in texts:
                _check_length(text, cfg.text.max_text_chars, item_idx, f"{Column.WIT_FEATURES}.{sub.value}")
            chosen = [languages[i] for i in indices]
            out[sub.value] = (
                {"text": texts[0], "language": chosen[0]}
                if k is not None
                else {"text": texts, "language": chosen}
            )
        return out


def _field(row: Mapping[str, Any], column: Column, item_idx: int | None) -> Any:
    if str(column) not in row:
        raise TaliSchemaError(f"row has no {column} column", item_idx=item_idx, field=str(column))
    return row[str(column)]


def _check_length(text: str, limit: int, item_idx: int | None, field: str) -> None:
    if len(text) > limit:
        raise TaliDataError(
            f"text is {len(text)} characters, over the {limit}-character limit",
            item_idx=item_idx,
            field=field,
        )


def _start_seconds(row: Mapping[str, Any], item_idx: int | None) -> float:
    raw = row.get(str(Column.YOUTUBE_VIDEO_STARTING_TIME))
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TaliDataError(
            f"start time {str(raw)[:40]!r} is not a number of seconds",
            item_idx=item_idx,
            field=str(Column.YOUTUBE_VIDEO_STARTING_TIME),
        ) from None
    if not np.isfinite(value) or value < 0:
        raise TaliDataError(
            f"start time {value} is not a finite, non-negative number of seconds",
            item_idx=item_idx,
            field=str(Column.YOUTUBE_VIDEO_STARTING_TIME),
        )
    return value


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


def _single(decoded: DecodedFrames, index: int, output: FrameOutput) -> dict[str, Any]:
    return {
        "pixels": _pixels_out(decoded.pixels[index], output, channels_first=True),
        "pts_seconds": float(decoded.pts_seconds[index]),
    }
