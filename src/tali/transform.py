"""One TALI row in, one aligned sample out: an orchestrator of the modality readers.

Every clip-based output (frames, the single frame, audio, subtitles) is cut
from ONE window ``[t0, t0 + d]``; the sample records ``t0``, ``d``, the frame
timestamps and the chosen language so each output can be traced back. The
mp4 is opened once per sample and shared by the video and audio readers.

A sample is a dict keyed by sub-modality name; each value is the ``to_dict()`` of
its reader's output type (:mod:`tali.sample`)::

    youtube_content_video    frames [N, 3, S, S] uint8, pts_seconds [N] float64, mask [N] bool, rotation
    youtube_random_video_frame / youtube_thumbnail_image / wikipedia_caption_image
                             pixels [3, S, S] uint8 (+ pts_seconds for frames from the clip)
    youtube_content_audio    waveform [round(d * sr)] float32, sample_rate, valid_samples, missing
    *_text                   text: str (list[str] when every language is asked for), language
    window                   start_seconds, duration_seconds, clip_seconds (clip timeline)

plus ``item_idx``, ``key`` (the row's position in its source) and ``epoch``. Random
choices are keyed by :func:`tali.window.seed_key` (the row's ``item_idx``), not ``key``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tali.clock import Stage, timed
from tali.config import TaliConfig, WindowConfig
from tali.decode.clip import Clip, open_clip
from tali.decode.index import clip_seconds, keyframe_seconds
from tali.errors import TaliSchemaError
from tali.sample import audio, image, text, video
from tali.sample.base import ReadContext, row_field
from tali.sample.layout import window_dict
from tali.sample.video import FramePlanner
from tali.schema import Column, SubModality
from tali.window import Window, choose_window, plan_frames, seed_key

__all__ = ["FramePlanner", "TaliTransform", "WindowChooser", "default_choose", "sample_rng_for"]

WindowChooser = Callable[[WindowConfig, float, Callable[[str], np.random.Generator]], Window]
#: Rows whose keyframe times a transform keeps (``start="keyframe"``): ~30 MB at most.
_KEYFRAME_CACHE_ROWS = 100_000


def sample_rng_for(seed: int, epoch: int, key: int, purpose: str) -> np.random.Generator:
    """An independent generator per decision, so adding a sub-modality to a config
    never changes the choices made for the others. ``key``: :func:`tali.window.seed_key`."""
    tag = zlib.crc32(purpose.encode())
    return np.random.default_rng(np.random.SeedSequence([int(seed) & (2**63 - 1), int(epoch), int(key), tag]))


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
        """``key``: the row's position in its source (recorded; the seed key is
        :func:`tali.window.seed_key` of the row and ``key``)."""
        cfg = self.config
        item_idx = row.get(str(Column.ITEM_IDX))
        if item_idx is not None and (not isinstance(item_idx, int) or isinstance(item_idx, bool)):
            raise TaliSchemaError("item_idx must be an integer", item_idx=None, field=str(Column.ITEM_IDX))
        seed = seed_key(row, key)

        def rng(purpose: str) -> np.random.Generator:
            return sample_rng_for(cfg.seed, epoch, seed, purpose)

        # A null item_idx becomes the sentinel -1, so a batch's item_idx stays int64 [B].
        sample: dict[str, Any] = {
            "item_idx": -1 if item_idx is None else item_idx,
            "key": key,
            "epoch": epoch,
        }
        ctx = ReadContext(cfg, row, item_idx, rng)
        if cfg.needs_clip:
            data = row_field(row, Column.YOUTUBE_VIDEO_CONTENT, item_idx)
            with timed(Stage.OPEN):
                clip = open_clip(
                    data,
                    item_idx=item_idx,
                    max_seconds=cfg.video.max_decode_seconds,
                    limits=cfg.video.clip_limits,
                    decoder_options={"skip_loop_filter": "all"} if cfg.video.skip_loop_filter else None,
                    audio_stream=cfg.audio.stream,
                )
            with clip:
                length = clip_seconds(clip, cfg.window.max_clip_seconds)
                if cfg.window.start == "keyframe":  # the built-in choice, on the clip's keyframes
                    ctx.window = choose_window(cfg.window, length, rng("window"), self._keyframes(clip, data))
                else:
                    ctx.window = self.choose(cfg.window, length, rng)
                ctx.clip = clip
                for name, value in {**video.read(ctx, self.plan), **audio.read(ctx)}.items():
                    sample[name] = value.to_dict()
                ctx.clip = None
        elif cfg.wants(SubModality.YOUTUBE_SUBTITLE_TEXT):
            known = self.durations.get(item_idx) if self.durations and item_idx is not None else None
            length = min(known, cfg.window.max_clip_seconds) if known else cfg.window.nominal_clip_seconds
            ctx.window = self.choose(cfg.window, length, rng)
        if ctx.window is not None:
            sample["window"] = window_dict(ctx.window)
        for family in (text, image):
            sample.update({name: value.to_dict() for name, value in family.read(ctx).items()})
        return sample

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
