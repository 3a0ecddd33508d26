"""The ground-truth sample dataset: build it, find it, and read its codes back.

>>> from tali import sample_data
>>> root = sample_data.build()                    # cached; a few tens of MB
>>> truth = sample_data.load_truth(root)          # true parameters per item_idx
>>> sample_data.read_frame_index(frame)           # which frame these pixels show

Frames show their index as a 4x4 code, audio plays ``tone_hz(second)`` in each
clip second, subtitle lines say ``"second <absolute second>"`` at
``<absolute second> + 0.5``, and each Wikipedia image shows its ``item_idx``.
"""

from tali.sample_data.build import build, default_path, load_truth
from tali.sample_data.generate import GENERATOR_VERSION, VARIANTS, ClipSpec, encode_clip, write_dataset
from tali.sample_data.patterns import (
    CodeUnreadable,
    dominant_hz,
    read_frame_index,
    read_image_code,
    second_of_tone,
    subtitle_text,
    tone_hz,
    tone_seconds,
)
from tali.sample_data.realworld import REALWORLD_VARIANTS, RealClip, encode_real_clip
from tali.sample_data.truth import (
    expected_frame_code,
    expected_subtitle_lines,
    expected_tone_second,
    frame_index_at,
    frames_to_decode,
)

__all__ = [
    "GENERATOR_VERSION",
    "REALWORLD_VARIANTS",
    "VARIANTS",
    "ClipSpec",
    "CodeUnreadable",
    "RealClip",
    "build",
    "default_path",
    "dominant_hz",
    "encode_clip",
    "encode_real_clip",
    "expected_frame_code",
    "expected_subtitle_lines",
    "expected_tone_second",
    "frame_index_at",
    "frames_to_decode",
    "load_truth",
    "read_frame_index",
    "read_image_code",
    "second_of_tone",
    "subtitle_text",
    "tone_hz",
    "tone_seconds",
    "write_dataset",
]
