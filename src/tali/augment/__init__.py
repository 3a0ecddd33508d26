"""Augmentation that keeps the modalities aligned (see ``docs/AUGMENT.md``)."""

from tali.augment.audio import AudioAugment, SpecAugment, apply_audio, apply_spec_augment
from tali.augment.augment import Augment
from tali.augment.spatial import SpatialAugment, SpatialParams, apply_spatial, draw_spatial
from tali.augment.text import CAPTION_FIELDS, TextAugment
from tali.augment.timing import TimeAugment, TimeMap, speed_resample

__all__ = [
    "CAPTION_FIELDS",
    "AudioAugment",
    "Augment",
    "SpatialAugment",
    "SpatialParams",
    "SpecAugment",
    "TextAugment",
    "TimeAugment",
    "TimeMap",
    "apply_audio",
    "apply_spatial",
    "apply_spec_augment",
    "draw_spatial",
    "speed_resample",
]
