"""Which H.264 packets no other frame is predicted from, read from their NAL headers.

A picture whose every slice has ``nal_ref_idc == 0`` is never a reference
(H.264 7.4.1): leaving its packet out of the decoder changes no other decoded
picture, bit for bit. Frames that are neither wanted nor referenced are then
skipped instead of decoded: with ``tali prepare``'s non-reference B-frames
three of every four frames of a window (measured in
``benchmarks/prepare/bench_prepare.py``).

Hand-written because nothing we depend on says it per packet: FFmpeg's
``AV_PKT_FLAG_DISPOSABLE`` (PyAV ``Packet.is_disposable``) comes only from an
mp4 ``sdtp`` box, which FFmpeg-muxed and YouTube files lack (0 of 900 packets
flagged on a clip with non-reference frames), and ``skip_frame="nonref"`` would
drop the wanted non-reference frames too. Only length-prefixed (``avcC``) H.264
is read; anything else, and any packet that does not parse exactly, counts as
a reference.
"""

from __future__ import annotations

import av

__all__ = ["is_nonreference", "nal_length_size"]

_SLICE_TYPES = (1, 5)  # coded slice of a non-IDR / IDR picture
#: NAL units a later picture may need even if the picture they travel with is
#: not a reference: parameter sets (7, 8, 13, 15) and an IDR slice (5).
_NEEDED_TYPES = frozenset({5, 7, 8, 13, 15})


def nal_length_size(stream: av.video.stream.VideoStream) -> int | None:
    """Bytes of each NAL unit's length prefix, from the ``avcC`` record; ``None``
    unless the stream is H.264 in that form (Annex B, other codecs)."""
    ctx = stream.codec_context
    if ctx.name != "h264":
        return None
    extradata = bytes(ctx.extradata or b"")
    if len(extradata) < 7 or extradata[0] != 1:  # configurationVersion 1
        return None
    size = (extradata[4] & 0x03) + 1
    return size if size in (1, 2, 4) else None


def is_nonreference(packet: av.Packet, length_size: int) -> bool:
    """True when every NAL unit parses, at least one is a slice, every slice has
    ``nal_ref_idc == 0`` and nothing a later picture needs travels with it."""
    data = memoryview(packet)
    size = len(data)
    offset = 0
    slices = 0
    while offset < size:
        if offset + length_size >= size:
            return False
        length = int.from_bytes(data[offset : offset + length_size], "big")
        start = offset + length_size
        if length == 0 or start + length > size:
            return False
        header = data[start]
        kind = header & 0x1F
        if kind in _NEEDED_TYPES or header & 0x80:  # forbidden_zero_bit set: not H.264
            return False
        if kind in _SLICE_TYPES:
            if header & 0x60:  # nal_ref_idc
                return False
            slices += 1
        offset = start + length
    return slices > 0
