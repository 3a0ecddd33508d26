"""A sample built by per-modality readers: each family (video frames, audio, image, texts)
owns its output type, how it reads from a window, its placeholder and how a time map
re-times it. The transform, the bad-row placeholder, the augmentation and ``tali.live``
all build values through these, so the sample's layout is written once."""

from tali.sample.audio import AudioWindow
from tali.sample.base import ReadContext
from tali.sample.image import ImagePixels
from tali.sample.layout import FAMILIES, placeholder_values, window_dict
from tali.sample.text import Subtitles, Text
from tali.sample.video import Frame, FramePlanner, VideoFrames

__all__ = [
    "FAMILIES",
    "AudioWindow",
    "Frame",
    "FramePlanner",
    "ImagePixels",
    "ReadContext",
    "Subtitles",
    "Text",
    "VideoFrames",
    "placeholder_values",
    "window_dict",
]
