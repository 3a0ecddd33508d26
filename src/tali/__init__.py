"""tali: temporally aligned, training-ready batches from the TALI dataset.

>>> import tali
>>> ds = tali.TaliDataset(tali.sample_data.build(), split="train")
>>> loader = tali.make_loader(ds, batch_size=8, num_workers=2)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names are imported on first use (PEP 562), so `import tali.errors` or the CLI's
# `tali --help` do not pay for torch, PyAV and pyarrow. The imports below are what
# type checkers and IDEs see; _LAZY says where each public name lives.
if TYPE_CHECKING:
    from tali import hf, hub, processors, sample_data, stats, viz
    from tali.collation import collate
    from tali.config import AudioConfig, ImageConfig, TaliConfig, TextConfig, VideoConfig, WindowConfig
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
        TaliMissingDependencyError,
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


_LAZY: dict[str, str] = {
    **dict.fromkeys(["hf", "hub", "processors", "sample_data", "stats", "viz"], ""),
    **dict.fromkeys(
        ["AudioConfig", "ImageConfig", "TaliConfig", "TextConfig", "VideoConfig", "WindowConfig"],
        "tali.config",
    ),
    "SampleCache": "tali.data.cache",
    "collate": "tali.collation",
    "TaliDataset": "tali.data.dataset",
    "make_loader": "tali.data.dataset",
    "TaliDistributedSampler": "tali.data.sampler",
    "StreamingLoader": "tali.data.stateful",
    "TaliStream": "tali.data.streaming",
    **dict.fromkeys(
        [
            "TaliConfigError",
            "TaliDataError",
            "TaliDecodeError",
            "TaliError",
            "TaliImageError",
            "TaliMissingDependencyError",
            "TaliMissingStreamError",
            "TaliModelAssetError",
            "TaliProcessorError",
            "TaliSchemaError",
            "TaliSourceError",
            "TaliSubtitleError",
        ],
        "tali.errors",
    ),
    "load": "tali.loading",
    "Monitor": "tali.observe",
    "MonitorSnapshot": "tali.observe",
    "Pipeline": "tali.pipeline",
    "live": "tali.realtime",
    **dict.fromkeys(["TALI_SCHEMA", "Column", "Modality", "SubModality"], "tali.schema"),
    "TaliTransform": "tali.transform",
}


#: Submodules reachable as attributes (``tali.data.policy.ErrorReport`` after ``import tali``).
_SUBMODULES = frozenset(
    ["cli", "config", "data", "decode", "errors", "loading", "observe", "quality", "schema", "text"]
    + ["pipeline", "realtime", "transform", "window", "augment", "sample"]
)


def __getattr__(name: str) -> Any:
    """Import only what owns ``name`` (PEP 562): ``tali.TaliConfig`` loads ``tali.config``
    and its imports, not torch, PyAV or the loaders. A subpackage (``tali.data``) loads its
    modules that own a public name, so ``tali.data.policy`` resolves as it always did."""
    if name.startswith("__"):  # dunder probes (copy, pickle, doctest) never load the package
        raise AttributeError(f"module 'tali' has no attribute {name!r}")
    if name in _SUBMODULES:
        module = importlib.import_module(f"tali.{name}")
        for owner in sorted({m for m in _LAZY.values() if m.startswith(f"tali.{name}.")}):
            importlib.import_module(owner)
        return module
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'tali' has no attribute {name!r}")
    value = (
        importlib.import_module(f"tali.{name}")
        if not where
        else getattr(importlib.import_module(where), name)
    )
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


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
    "TaliMissingDependencyError",
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
