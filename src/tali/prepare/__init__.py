"""``tali prepare``: TALI shards re-encoded for random-window training, in the same schema and layout."""

from tali.prepare.encode import Reencoded, output_size, reencode, reencode_clip
from tali.prepare.run import METADATA_KEY, PrepareReport, RowFailure, prepare, read_provenance
from tali.prepare.settings import AudioCodec, OnRowError, PrepareSettings

__all__ = [
    "METADATA_KEY",
    "AudioCodec",
    "OnRowError",
    "PrepareReport",
    "PrepareSettings",
    "Reencoded",
    "RowFailure",
    "output_size",
    "prepare",
    "read_provenance",
    "reencode",
    "reencode_clip",
]
