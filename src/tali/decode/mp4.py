"""Read an mp4's box tree just far enough to bound what FFmpeg will build when it opens it.

FFmpeg's mov demuxer trusts the counts in the index boxes: a 200k-entry edit
list made ``av.open`` spend 1 GB rebuilding its index once per entry, and a
``trun`` or ``stsz`` may claim billions of samples in a few bytes (FFmpeg
keeps a 24-byte index entry per sample). Those counts are read here, from the
bytes, before FFmpeg sees them. The walk reads box headers only (a 30 s clip
has a few dozen boxes; ~20 us), never sample data.

Hand-written rather than a dependency: reading a box header is one
``struct.unpack_from``, and this needs four counts, not a parsed tree. It is a
bound, not a parser: boxes it cannot follow are left to FFmpeg.
"""

from __future__ import annotations

import struct

from tali.errors import TaliDecodeError
from tali.limits import ClipLimits

__all__ = ["check_mp4_counts"]

#: Boxes whose payload is more boxes, on the paths to elst, stsz/stz2 and trun.
_CONTAINERS = frozenset({b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl", b"moof", b"traf"})
_MAX_DEPTH = 8
_FIELD = "youtube_video_content"


def _boxes(view: memoryview, start: int, end: int):
    """``(type, payload_start, box_end)`` of each box in ``view[start:end]``."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", view, at)
        header = 8
        if size == 1:
            if at + 16 > end:
                return
            (size,) = struct.unpack_from(">Q", view, at + 8)
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            return  # not a box we can follow; FFmpeg decides what it is
        yield kind, at + header, at + size
        at += size


def check_mp4_counts(
    data: bytes | bytearray | memoryview, limits: ClipLimits, *, item_idx: int | None
) -> None:
    """Raise ``TaliDecodeError`` if an edit list or the sample count is over ``limits``."""
    view = memoryview(data)
    samples = 0
    stack = [(0, len(data), 0)]
    while stack:
        start, end, depth = stack.pop()
        for kind, body, box_end in _boxes(view, start, end):
            if kind in _CONTAINERS and depth < _MAX_DEPTH:
                stack.append((body, box_end, depth + 1))
            elif kind == b"elst" and body + 8 <= box_end:
                (entries,) = struct.unpack_from(">I", view, body + 4)  # after version + flags
                if entries > limits.max_edit_list_entries:
                    raise TaliDecodeError(
                        f"clip has an edit list of {entries} entries, over the "
                        f"{limits.max_edit_list_entries}-entry limit",
                        item_idx=item_idx,
                        field=_FIELD,
                    )
            elif kind in (b"stsz", b"stz2", b"trun") and body + 12 <= box_end:
                # stsz: version+flags, sample_size, sample_count; stz2: ..., field_size, sample_count;
                # trun: version+flags, sample_count.
                offset = 4 if kind == b"trun" else 8
                (count,) = struct.unpack_from(">I", view, body + offset)
                samples += count
                if samples > limits.max_samples:
                    raise TaliDecodeError(
                        f"clip claims over {limits.max_samples} samples (the sample limit)",
                        item_idx=item_idx,
                        field=_FIELD,
                    )
