"""Model-ready batches: CLIP pixels, Whisper log-mel, any tokenizer, per-batch padding.

>>> procs = tali.processors.default_processors()          # CLIP ViT-B/16 + Whisper base
>>> ds = tali.TaliDataset(root, processors=procs)
>>> loader = tali.make_loader(ds, collate_fn=procs.collate)

See docs/PROCESSORS.md for the options and docs/BATCH.md for the batch layout.
"""

from tali.processors.audio import HFAudioProcessor, WhisperLogMel, slaney_mel_filters
from tali.processors.base import ProcessorSet, SubProcessor
from tali.processors.image import CLIP_MEAN, CLIP_STD, ClipPixels, HFImageProcessor
from tali.processors.pretrained import (
    DEFAULT_CLIP,
    DEFAULT_WHISPER,
    clip_tokenizer_from_bpe,
    default_processors,
    load_clip,
    load_whisper,
)
from tali.processors.text import Tokenize, pad_sequences

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "DEFAULT_CLIP",
    "DEFAULT_WHISPER",
    "ClipPixels",
    "HFAudioProcessor",
    "HFImageProcessor",
    "ProcessorSet",
    "SubProcessor",
    "Tokenize",
    "WhisperLogMel",
    "clip_tokenizer_from_bpe",
    "default_processors",
    "load_clip",
    "load_whisper",
    "pad_sequences",
    "slaney_mel_filters",
]
