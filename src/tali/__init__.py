"""tali: temporally aligned, training-ready batches from the TALI dataset.

>>> import tali
>>> ds = tali.TaliDataset(tali.sample_data.build(), split="train")
>>> loader = tali.make_loader(ds, batch_size=8, num_workers=2)
"""

from tali import hf, hub, processors, sample_data, stats, viz
from tali.config import AudioConfig, ImageConfig, TaliConfig, TextConfig, VideoConfig, WindowConfig
from tali.data.cache import SampleCache
from tali.data.collate import collate
from tali.data.dataset import TaliDataset, make_loader
from tali.data.sampler import TaliDistributedSampler
from tali.data.stateful import StreamingLoader
from tali.data.streaming import TaliStream
from tali.errors import (
    TaliConfigError,
    TaliDataError,
    TaliDecodeError,
    TaliError,
    TaliImageError,
    TaliMissingStreamError,
    TaliModelAssetError,
    TaliProcessorError,
    TaliSchemaError,
    TaliSourceError,
    TaliSubtitleError,
)
from tali.loading import load
from tali.observe import Monitor, MonitorSnapshot
from tali.pipeline import Pipeline
from tali.realtime import live
from tali.schema import TALI_SCHEMA, Column, Modality, SubModality
from tali.transform import TaliTransform

__version__ = "0.1.0"

__all__ = [
    "TALI_SCHEMA",
    "AudioConfig",
    "Column",
    "ImageConfig",
    "Modality",
    "Monitor",
    "MonitorSnapshot",
    "Pipeline",
    "SampleCache",
    "StreamingLoader",
    "SubModality",
    "TaliConfig",
    "TaliConfigError",
    "TaliDataError",
    "TaliDataset",
    "TaliDecodeError",
    "TaliDistributedSampler",
    "TaliError",
    "TaliImageError",
    "TaliMissingStreamError",
    "TaliModelAssetError",
    "TaliProcessorError",
    "TaliSchemaError",
    "TaliSourceError",
    "TaliStream",
    "TaliSubtitleError",
    "TaliTransform",
    "TextConfig",
    "VideoConfig",
    "WindowConfig",
    "collate",
    "hf",
    "hub",
    "live",
    "load",
    "make_loader",
    "processors",
    "sample_data",
    "stats",
    "viz",
]
