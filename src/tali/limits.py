"""The bounds that keep one hostile row from stalling or exhausting a worker.

Stdlib only, so both ``tali.config`` (the user-facing fields) and the decoders
(which enforce them) read the same defaults. Every limit is stated with its
default and the config field that changes it in ``docs/QUALITY.md``.

Together they make a *per-row memory budget*: with the defaults, decoding any
one row costs a worker at most :data:`ROW_MEMORY_BUDGET_BYTES` above what it
held before (``tests/quality/test_row_budget.py`` runs the hostile corpus
through both loaders and measures it).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

__all__ = ["AUDIO_CODECS", "LIMIT_NAMES", "ROW_MEMORY_BUDGET_BYTES", "VIDEO_CODECS", "ClipLimits", "renamed"]

#: Peak memory one row may add to a worker (decode buffers, pixels, texts), with the default limits.
ROW_MEMORY_BUDGET_BYTES = 1 << 30

#: FFmpeg codec names a TALI clip's video may use (YouTube serves H.264, VP9 and AV1; HEVC for some uploads).
VIDEO_CODECS: tuple[str, ...] = ("h264", "hevc", "vp9", "av1")
#: FFmpeg codec names a TALI clip's audio may use.
AUDIO_CODECS: tuple[str, ...] = ("aac", "mp3", "opus", "flac", "alac")


@dataclass(frozen=True, kw_only=True)
class ClipLimits:
    """What an mp4 may hold before any of it is decoded (checked at open)."""

    #: Bytes of one clip (a 30 s TALI clip is a few MB; 1080p at 8 Mbit/s is 30 MB).
    max_bytes: int = 64 << 20
    #: Pixels of one decoded video frame (4096 x 2160): the header's and every frame's.
    max_frame_pixels: int = 4096 * 2160
    #: Entries in one track's edit list (real clips have 1-2; FFmpeg rebuilds its index per entry).
    max_edit_list_entries: int = 64
    #: Samples (frames, audio packets) over all tracks; FFmpeg keeps a 24-byte index entry per sample.
    max_samples: int = 1_000_000
    #: Codecs a stream may use; anything else is refused before a decoder opens.
    codecs: tuple[str, ...] = VIDEO_CODECS + AUDIO_CODECS


#: One name per meaning: every per-row limit field of a config (``TaliConfig``'s parts,
#: ``CheckLimits``, ``MetricsOptions``, ``PrepareSettings``) is named from this table, and
#: a name means the same thing wherever it appears (docs/QUALITY.md, "Per-row limits").
LIMIT_NAMES: dict[str, str] = {
    "max_decode_seconds": "wall-clock seconds one row's decode (or re-encode) may take",
    "max_image_decode_seconds": "wall-clock seconds one image's decode may take (validation)",
    "max_clip_seconds": "media seconds a clip's frames may span (its length, not time spent)",
    "max_clip_bytes": "bytes of one mp4",
    "max_frame_pixels": "pixels of one decoded video frame",
    "max_edit_list_entries": "entries of one track's edit list",
    "max_samples": "samples (frames, audio packets) over a clip's tracks",
    "max_pixels": "pixels of one image",
    "max_image_pixels": "pixels of one image (validation, metrics)",
    "max_jpeg_scans": "scans of one progressive JPEG",
    "max_subtitle_bytes": "UTF-8 bytes of a subtitle document and of its texts together",
    "max_subtitle_nodes": "YAML nodes a subtitle document expands to",
    "max_subtitle_aliases": "YAML alias uses of a subtitle document",
    "max_text_chars": "characters of one title, description or WIT text",
    "max_frame_gap_seconds": "media seconds between frames (or a composition offset)",
}


def renamed(owner: Any, old: str, value: Any, new: str, *, stacklevel: int = 4) -> None:
    """Accept a field's old keyword (``value`` is what was passed, ``None`` if nothing):
    warn, and set the new field to it."""
    if value is None:
        return
    warnings.warn(
        f"{type(owner).__name__}({old}=...) is renamed {new} ({LIMIT_NAMES[new]}); "
        f"the old keyword will be removed",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    object.__setattr__(owner, new, value)
