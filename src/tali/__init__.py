"""tali: temporally aligned, training-ready batches from the TALI dataset.

>>> import tali
>>> ds = tali.TaliDataset(tali.sample_data.build(), split="train")
>>> loader = tali.make_loader(ds, batch_size=8, num_workers=2)
"""

from tali import hf, hub, processors, sample_data
from tali.config import AudioConfig, ImageConfig, TaliConfig, TextConfig, VideoConfig, WindowConfig
from tali.data.collate import collate
from tali.data.cache import SampleCache
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
from tali.observe import Monitor, MonitorSnapshot
from tali.schema import TALI_SCHEMA, Column, Modality, SubModality
from tali.transform import TaliTransform
from tali.loading import load

__version__ = "0.1.0"

__all__ = [
    "sample_data",
    "hf",
    "hub",
    "processors",
    "TaliConfig",
    "WindowConfig",
    "VideoConfig",
    "AudioConfig",
    "ImageConfig",
    "TextConfig",
    "TaliDataset",
    "TaliTransform",
    "make_loader",
    "load",
    "TaliStream",
    "StreamingLoader",
    "TaliDistributedSampler",
    "SampleCache",
    "collate",
    "Monitor",
    "MonitorSnapshot",
    "TALI_SCHEMA",
    "Column",
    "Modality",
    "SubModality",
    "TaliError",
    "TaliConfigError",
    "TaliDataError",
    "TaliDecodeError",
    "TaliImageError",
    "TaliMissingStreamError",
    "TaliSchemaError",
    "TaliSourceError",
    "TaliSubtitleError",
    "TaliProcessorError",
    "TaliModelAssetError",
]
