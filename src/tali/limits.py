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

from dataclasses import dataclass

__all__ = ["AUDIO_CODECS", "ROW_MEMORY_BUDGET_BYTES", "VIDEO_CODECS", "ClipLimits"]

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
