"""``Augment``: every augmentation of a sample, seeded per ``(seed, epoch, row, purpose)``.

Each part draws from its own generator (``rng("augment.<part>")``), so adding
or removing one part never changes what the others draw, and a sample's
augmentation is the same in any worker, rank or resumed run.

Three hooks, at three places of the pipeline:

- :meth:`Augment.choose` replaces the window choice (before decoding): temporal
  jitter and speed perturbation decide which source seconds are decoded;
- :meth:`Augment.apply` runs on the decoded sample: the time map (audio
  resampled by the speed, frame ``output_seconds``, subtitle ``line_seconds``),
  spatial, audio and text augmentation;
- :meth:`Augment.after_process` runs after the processors: SpecAugment on the log-mel.

Everything drawn is recorded under ``sample["augment"]`` with fixed keys
(so batches collate): the time map, each spatial draw, gain and SNR, the
SpecAugment bands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tali.augment.audio import AudioAugment, SpecAugment, apply_audio, apply_spec_augment
from tali.augment.spatial import SpatialAugment, apply_spatial, draw_spatial
from tali.augment.text import TextAugment, choose_caption_field, weighted_language
from tali.augment.timing import TimeAugment, TimeMap
from tali.config import TaliConfig, WindowConfig
from tali.errors import TaliConfigError
from tali.sample import audio, video
from tali.sample import text as text_reader
from tali.schema import Column, SubModality
from tali.text import caption, main_body, read_wit, title
from tali.transform import TaliTransform
from tali.window import Window, choose_window

__all__ = ["Augment"]

S = SubModality
Rng = Callable[[str], np.random.Generator]
_SPATIAL_SUBS = (
    S.YOUTUBE_CONTENT_VIDEO,
    S.YOUTUBE_RANDOM_VIDEO_FRAME,
    S.YOUTUBE_THUMBNAIL_IMAGE,
    S.WIKIPEDIA_CAPTION_IMAGE,
)


@dataclass(frozen=True, kw_only=True)
class Augment:
    """Which augmentations run; ``None`` turns a part off, and every part is off unless
    named: ``Augment(spatial=SpatialAugment(flip_p=1.0))`` only flips. The recommended
    set is :meth:`default`."""

    time: TimeAugment | None = None
    spatial: SpatialAugment | None = None
    audio: AudioAugment | None = None
    spec: SpecAugment | None = None
    text: TextAugment | None = None

    def __post_init__(self) -> None:
        for name, cls in (
            ("time", TimeAugment),
            ("spatial", SpatialAugment),
            ("audio", AudioAugment),
            ("spec", SpecAugment),
            ("text", TextAugment),
        ):
            value = getattr(self, name)
            if value is not None and not isinstance(value, cls):
                raise TaliConfigError(
                    f"Augment.{name} must be a {cls.__name__} or None, got {type(value).__name__}"
                )

    @classmethod
    def default(cls) -> Augment:
        """The recommended set (what the benchmark measures): speed 0.9-1.1x, crop, flip,
        colour jitter, grayscale, gain, noise. SpecAugment and text need choices only the
        user can make (the processed key, the languages), so they stay off."""
        return cls(time=TimeAugment.default(), spatial=SpatialAugment.default(), audio=AudioAugment.default())

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if v is None else asdict(v)) for k, v in self.__dict__.items()}

    def check(self, config: TaliConfig) -> None:
        """Raise at build time what would fail on every sample."""
        outputs = {"video": config.video.output, "image": config.image.output}
        if self.spatial is not None:
            for name, output in outputs.items():
                if output == "pil":
                    raise TaliConfigError(
                        f"Augment.spatial works on tensors; {name}.output='pil' is not allowed with it "
                        "(choose 'uint8' or 'float')"
                    )

    # -- before decoding ------------------------------------------------------------------------

    def decoder(
        self, config: TaliConfig, *, durations: Mapping[int, float] | None = None, plan: Any = None
    ) -> TaliTransform:
        """The decode stage for ``config``: the window comes from :meth:`choose`; with a
        time map, subtitles are cut by :meth:`apply` (once, with their times) instead."""
        decode_config = config
        if self.time is not None and config.needs_clip and config.wants(S.YOUTUBE_SUBTITLE_TEXT):
            decode_config = config.replace(
                modalities=tuple(m for m in config.modalities if m is not S.YOUTUBE_SUBTITLE_TEXT)
            )
        return TaliTransform(decode_config, durations=durations, choose=self.choose, plan=plan)

    def choose(self, config: WindowConfig, clip_seconds: float, rng: Rng) -> Window:
        if self.time is None:
            return choose_window(config, clip_seconds, rng("window"))
        return self.time.choose(config, clip_seconds, rng)

    # -- on the decoded sample ------------------------------------------------------------------

    def apply(
        self, sample: dict[str, Any], *, row: Mapping[str, Any] | None, config: TaliConfig, rng: Rng
    ) -> dict[str, Any]:
        """Augment a decoded sample in place. ``row=None``: the sample is a bad row's
        placeholder (:func:`tali.data.policy.placeholder_sample`): the same draws and
        keys, but nothing is read from the row."""
        record: dict[str, Any] = {}
        window = sample.get("window")
        if window is not None:
            w = Window(window["start_seconds"], window["duration_seconds"], window["clip_seconds"])
            time_map = (
                self.time.time_map(w, config.window)
                if self.time is not None
                else TimeMap(offset_seconds=w.start_seconds, speed=1.0, output_seconds=w.duration_seconds)
            )
            record["time"] = time_map.to_dict()
            for name, retime in (
                (S.YOUTUBE_CONTENT_VIDEO, video.retime),
                (S.YOUTUBE_CONTENT_AUDIO, audio.retime),
            ):
                if name.value in sample:
                    retime(sample[name.value], time_map)
            if config.wants(S.YOUTUBE_SUBTITLE_TEXT):
                sample[S.YOUTUBE_SUBTITLE_TEXT.value] = self._subtitles(sample, row, config, rng, w, time_map)
        if self.spatial is not None:
            spatial_rng = rng("augment.spatial")
            # One seed per sub-modality, always drawn in the same order: which ones a
            # config has does not change the draws of the others.
            seeds = spatial_rng.integers(2**63, size=len(_SPATIAL_SUBS))
            for sub, seed in zip(_SPATIAL_SUBS, seeds):
                value = sample.get(sub.value)
                if value is None:
                    continue
                key = "frames" if sub is S.YOUTUBE_CONTENT_VIDEO else "pixels"
                pixels = value[key]
                height, width = pixels.shape[-2:]
                params = draw_spatial(self.spatial, height, width, np.random.default_rng(int(seed)))
                value[key] = apply_spatial(pixels, params)
                record[f"spatial.{sub.value}"] = params.to_dict()
        audio_value = sample.get(S.YOUTUBE_CONTENT_AUDIO.value)
        if self.audio is not None and audio_value is not None:
            record["audio"] = apply_audio(audio_value, self.audio, rng("augment.audio"))
        if self.text is not None and row is not None:
            self._text(sample, row, rng)
        sample["augment"] = record
        return sample

    def _subtitles(
        self,
        sample: dict[str, Any],
        row: Mapping[str, Any] | None,
        config: TaliConfig,
        rng: Rng,
        window: Window,
        time_map: TimeMap,
    ) -> dict[str, Any]:
        """The window's lines again, through the subtitle reader (every budget of the
        config), with their times (``line_seconds``, output timeline) and the text
        augmentation's line dropout."""
        if row is None:
            return text_reader.placeholder(config, timed_lines=True)[S.YOUTUBE_SUBTITLE_TEXT.value].to_dict()
        item_idx = sample.get("item_idx")
        item_idx = item_idx if isinstance(item_idx, int) and item_idx >= 0 else None
        dropout = self.text.subtitle_dropout if self.text is not None else 0.0

        def keep(count: int) -> np.ndarray:
            return rng("augment.subtitles").random(count) >= dropout

        return text_reader.subtitles(
            config, row, window, item_idx, to_output=time_map.to_output, keep=keep
        ).to_dict()

    def _text(self, sample: dict[str, Any], row: Mapping[str, Any], rng: Rng) -> None:
        cfg = self.text
        assert cfg is not None
        item_idx = sample.get("item_idx")
        item_idx = item_idx if isinstance(item_idx, int) else None
        wiki = [
            s
            for s in (S.WIKIPEDIA_CAPTION_TEXT, S.WIKIPEDIA_TITLE_TEXT, S.WIKIPEDIA_MAIN_BODY_TEXT)
            if s.value in sample
        ]
        if not wiki or (cfg.language_weights is None and cfg.caption_fields is None):
            return
        wit = read_wit(row.get(str(Column.WIT_FEATURES)), item_idx=item_idx)
        languages = wit["language"]
        k = weighted_language(languages, cfg, rng("augment.language")) if cfg.language_weights else None
        if k is None:
            current = sample[wiki[0].value].get("language")
            if not isinstance(current, str):
                return  # every language was asked for: nothing to choose
            k = languages.index(current)
        field_rng = rng("augment.caption_field")
        for sub, build in (
            (S.WIKIPEDIA_CAPTION_TEXT, caption),
            (S.WIKIPEDIA_TITLE_TEXT, title),
            (S.WIKIPEDIA_MAIN_BODY_TEXT, main_body),
        ):
            if sub.value not in sample:
                continue
            text = build(wit, k)
            if sub is S.WIKIPEDIA_CAPTION_TEXT and cfg.caption_fields is not None:
                text = choose_caption_field(wit, k, cfg, field_rng) or text
            sample[sub.value] = {"text": text, "language": languages[k]}

    # -- after the processors -------------------------------------------------------------------

    def after_process(self, sample: dict[str, Any], *, rng: Rng) -> dict[str, Any]:
        if self.spec is None:
            return sample
        audio = sample.get(S.YOUTUBE_CONTENT_AUDIO.value)
        if audio is None:
            return sample
        valid = audio.get("valid_samples")
        bands = apply_spec_augment(
            audio,
            self.spec,
            rng("augment.spec"),
            valid_samples=valid if isinstance(valid, int) else None,
            field=S.YOUTUBE_CONTENT_AUDIO.value,
        )
        sample.setdefault("augment", {})["spec"] = bands
        return sample
