"""Clips shaped like real YouTube downloads, for the sample dataset's ``realworld`` split.

Each variant is one class of input a download can be and PyAV's bundled FFmpeg can
encode: x264 with B-frames and b-pyramid, an edit-list copy cut, variable frame
rate, a display-rotation tag, 854x480, 29.97 fps on a 1/30000 time base, 60 fps, a
single-GOP 30 s clip, VP9 + Opus, AV1, MP3, mono 22.05 kHz, a 2 s clip, a stream
starting at 1.5 s, audio starting before the video. (HE-AAC is not here: FFmpeg's
own AAC encoder writes LC only.)

The truth of each clip is what its frames and tone really are: ``frame_seconds``
(clip seconds of every displayed frame, display order), ``first_code`` (the code
of the first displayed frame; frame ``i`` shows ``first_code + i``), and the audio
offset and length. Clips are small (320x180 where the class allows) and short.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, cast

import av
import numpy as np

from tali.sample_data.patterns import draw_code, tone_hz

__all__ = ["REALWORLD_VARIANTS", "RealClip", "encode_real_clip"]

_PERIOD = 80
# Low-delay prediction: with random access at this quality SVT-AV1 smears the code of
# some frames into their neighbours (7 of 180 unreadable).
_AV1_OPTIONS = {"preset": "11", "crf": "20", "svtav1-params": "enable-tf=0:scd=0:pred-struct=1"}


@dataclass(frozen=True)
class RealClip:
    """One real-world variant: how it is encoded and what it must decode to."""

    variant: str
    width: int = 320
    height: int = 180
    rate: Fraction = Fraction(30)
    #: Video time base denominator (ticks per second).
    ticks: int = 15360
    duration_seconds: float = 8.0
    gop_seconds: float = 2.0
    video_codec: str = "libx264"
    b_frames: int = 2
    b_pyramid: bool = False
    #: Frame intervals cycle through these multiples of 1/rate (variable frame rate).
    vfr_pattern: tuple[int, ...] | None = None
    #: Counter-clockwise degrees the display matrix turns the stored picture.
    rotation: int = 0
    #: Stream time of the first video frame (a stream that starts late).
    video_start_seconds: float = 0.0
    has_audio: bool = True
    audio_codec: str = "aac"
    sample_rate: int = 44_100
    audio_layout: str = "stereo"
    #: Audio start minus video start (negative: audio before the first frame).
    audio_offset_seconds: float = 0.0
    #: Copy-cut at this clip second of the encoded clip (an edit list hides what is before).
    cut_seconds: float | None = None
    #: The cut keeps packets from the keyframe before it (else from the first packet at the
    #: cut: the track starts on a non-keyframe, as ``-ss`` after ``-i`` with ``-c copy`` writes).
    cut_from_keyframe: bool = True
    #: The mp4 muxer writes an edit list where the first timestamp is not 0.
    edit_list: bool = True
    #: x264 ``open-gop=1``: keyframes after the first are non-IDR I-frames whose leading
    #: B-frames reference the GOP before.
    open_gop: bool = False
    #: Colour of the encoded pixels: ``"bt601"`` (limited, untagged), ``"bt709"`` (tagged,
    #: limited), ``"full"`` (``yuvj420p``, BT.601 full range), ``"bt709_10bit"`` (High 10).
    colour: str = "bt601"
    #: A second audio stream (a constant ``_DECOY_HZ`` tone) written first, without the
    #: default disposition: the clip's real audio is stream 1, marked default.
    decoy_audio_first: bool = False
    #: Every stream's timestamps shifted by this many seconds (``-output_ts_offset``).
    ts_offset_seconds: float = 0.0
    #: mp4 ``movflags`` (fragmented mp4: ``frag_keyframe+empty_moov``; DASH: ``+dash``).
    movflags: str | None = None
    #: Audio ends here (clip seconds; ``None``: with the video).
    audio_end_seconds: float | None = None


REALWORLD_VARIANTS: tuple[RealClip, ...] = (
    RealClip(variant="x264_bpyramid", b_frames=3, b_pyramid=True),
    RealClip(variant="editlist_cut", duration_seconds=10.0, cut_seconds=2.5),
    RealClip(variant="vfr", ticks=1000, vfr_pattern=(1, 2, 1, 3, 1, 1, 2)),
    RealClip(variant="rotated90", rotation=90),
    RealClip(variant="wide854", width=854, height=480, duration_seconds=4.0),
    RealClip(variant="ntsc2997", rate=Fraction(30000, 1001), ticks=30000),
    RealClip(variant="fps60", rate=Fraction(60), duration_seconds=5.0),
    RealClip(variant="single_gop30", duration_seconds=30.0, gop_seconds=30.0),
    RealClip(variant="vp9_opus", video_codec="libvpx-vp9", audio_codec="libopus", sample_rate=48_000),
    RealClip(variant="av1", video_codec="libsvtav1", duration_seconds=6.0),
    RealClip(variant="mp3", audio_codec="libmp3lame"),
    RealClip(variant="mono22k", sample_rate=22_050, audio_layout="mono"),
    RealClip(variant="clip2s", duration_seconds=2.0),
    RealClip(variant="late_start", video_start_seconds=1.5),
    RealClip(variant="audio_early", video_start_seconds=0.5, audio_offset_seconds=-0.5),
    # Round 2 (issue 23).
    RealClip(variant="x264_open_gop", b_frames=3, duration_seconds=10.0, gop_seconds=31 / 30, open_gop=True),
    RealClip(variant="cut_nonkey", duration_seconds=8.0, cut_seconds=2.5, cut_from_keyframe=False),
    RealClip(
        variant="cut_nonkey_noedit",
        duration_seconds=8.0,
        cut_seconds=2.5,
        cut_from_keyframe=False,
        edit_list=False,
    ),
    RealClip(variant="audio_second_default", decoy_audio_first=True, duration_seconds=4.0),
    RealClip(variant="ts_offset_10h", ts_offset_seconds=36000.0 + 7 / 15360, sample_rate=48_000),
    RealClip(variant="fps25", rate=Fraction(25), ticks=12800, duration_seconds=6.0),
    RealClip(variant="bt709", colour="bt709", duration_seconds=2.0),
    RealClip(variant="full_range", colour="full", duration_seconds=2.0),
    RealClip(variant="bt709_10bit", colour="bt709_10bit", duration_seconds=2.0),
    RealClip(variant="frag_mp4", movflags="frag_keyframe+empty_moov", duration_seconds=4.0),
    RealClip(
        variant="frag_dash", movflags="dash+frag_keyframe+empty_moov+default_base_moof", duration_seconds=4.0
    ),
    RealClip(variant="one_frame", duration_seconds=1 / 30),
    RealClip(variant="clip08s", duration_seconds=0.8),
    RealClip(variant="audio_short", duration_seconds=4.0, audio_end_seconds=2.3),
)

#: The decoy audio stream's tone (no per-second tone is this: ``tone_hz`` is 300 + 100 s).
DECOY_HZ = 2750.0
#: Flat patches of known sRGB value, drawn at the left of every frame: ``(x, y, size)``
#: in display pixels of a 320x180 picture, and the colour. A colour-tagged variant's
#: loader frames must show these values (within the encoder's error).
COLOUR_PATCHES: tuple[tuple[int, int, int, tuple[int, int, int]], ...] = (
    (4, 8, 36, (200, 40, 40)),
    (4, 52, 36, (40, 190, 60)),
    (4, 96, 36, (50, 60, 210)),
    (4, 140, 36, (235, 235, 20)),
)
#: What each ``colour`` encodes to: pixel format, matrix, range, x264 profile.
_COLOUR = {
    "bt601": ("yuv420p", None, None),
    "bt709": ("yuv420p", "ITU709", "MPEG"),
    "full": ("yuvj420p", "ITU601", "JPEG"),
    "bt709_10bit": ("yuv420p10le", "ITU709", "MPEG"),
}


def _frame_ticks(spec: RealClip) -> list[int]:
    """Video pts (ticks from the stream's first frame) of every encoded frame."""
    step = Fraction(spec.ticks) / spec.rate  # ticks per 1/rate
    out, t, i = [], Fraction(0), 0
    end = spec.duration_seconds * spec.ticks
    while t < end - 1e-9:
        out.append(round(t))
        mult = spec.vfr_pattern[i % len(spec.vfr_pattern)] if spec.vfr_pattern else 1
        t += step * mult
        i += 1
    return out


def _picture(spec: RealClip, code: int) -> np.ndarray:
    """The upright picture of frame ``code``, then turned to how it is stored."""
    upright_w, upright_h = (
        (spec.height, spec.width) if spec.rotation in (90, 270) else (spec.width, spec.height)
    )
    x = (2 * np.pi / _PERIOD) * (np.arange(upright_w)[None, :] + 2 * code)
    y = np.linspace(0, 1, upright_h)[:, None]
    base = 0.5 + 0.25 * np.sin(x + 3 * y)
    rgb = np.stack([base * 180, (1 - base) * 160 + 40 * y, np.full_like(base, 110)], axis=2)
    canvas = rgb.clip(0, 255).astype(np.uint8)
    draw_code(canvas, code)
    if spec.colour != "bt601":
        for left, top, side, value in COLOUR_PATCHES:
            canvas[top : top + side, left : left + side] = value
    # Displaying turns the stored picture ``rotation`` degrees counter-clockwise.
    return np.ascontiguousarray(np.rot90(canvas, -(spec.rotation // 90)))


def _tone(spec: RealClip, clip_start: float, clip_end: float, rate: int) -> np.ndarray:
    """Mono tone of clip seconds ``[start, end)``: ``tone_hz(floor(t))``, phase-continuous."""
    t = np.arange(round(clip_start * rate), round(clip_end * rate)) / rate
    freq = np.vectorize(tone_hz)(np.floor(t + 1e-9))
    return (0.3 * np.sin(2 * np.pi * np.cumsum(freq) / rate)).astype(np.float32)


def _muxer_options(spec: RealClip) -> dict[str, str]:
    options = {} if spec.edit_list else {"use_editlist": "0"}
    if spec.movflags:
        options["movflags"] = spec.movflags
    return options


def _add_audio(container: Any, spec: RealClip, *, default: bool) -> av.AudioStream:
    audio = cast(av.AudioStream, container.add_stream(spec.audio_codec, rate=spec.sample_rate))
    audio.layout = spec.audio_layout
    audio.bit_rate = 96_000
    if spec.decoy_audio_first:
        audio.disposition = av.stream.Disposition.default if default else av.stream.Disposition(0)
    return audio


def _encode_audio(container: Any, audio: av.AudioStream, spec: RealClip, track: np.ndarray) -> None:
    rate = spec.sample_rate
    first = round((spec.video_start_seconds + spec.audio_offset_seconds + spec.ts_offset_seconds) * rate)
    chunk = 1152 if spec.audio_codec == "libmp3lame" else 960 if spec.audio_codec == "libopus" else 1024
    channels = av.AudioLayout(spec.audio_layout).nb_channels
    for lo in range(0, track.size, chunk):
        piece = track[lo : lo + chunk]
        if piece.size < chunk and spec.audio_codec != "aac":
            piece = np.concatenate([piece, np.zeros(chunk - piece.size, np.float32)])
        planes = np.ascontiguousarray(np.repeat(piece[None], channels, axis=0))
        aframe = av.AudioFrame.from_ndarray(planes, format="fltp", layout=spec.audio_layout)
        aframe.sample_rate, aframe.pts = rate, first + lo
        aframe.time_base = Fraction(1, rate)
        for packet in audio.encode(aframe):
            container.mux(packet)
    for packet in audio.encode():
        container.mux(packet)


def _encode(spec: RealClip) -> tuple[bytes, list[int]]:
    buffer = io.BytesIO()
    ticks = _frame_ticks(spec)
    start_ticks = round((spec.video_start_seconds + spec.ts_offset_seconds) * spec.ticks)
    pix_fmt, matrix, colour_range = _COLOUR[spec.colour]
    with av.open(buffer, "w", format="mp4", options=_muxer_options(spec)) as container:
        video = cast(av.VideoStream, container.add_stream(spec.video_codec, rate=spec.rate))
        video.width, video.height, video.pix_fmt = spec.width, spec.height, pix_fmt
        if matrix is not None:
            ctx = video.codec_context
            ctx.colorspace = 1 if matrix == "ITU709" else 6  # AVCOL_SPC_BT709 / SMPTE170M
            ctx.color_primaries = 1 if matrix == "ITU709" else 6
            ctx.color_trc = 1 if matrix == "ITU709" else 6
            ctx.color_range = 2 if colour_range == "JPEG" else 1  # AVCOL_RANGE_JPEG / MPEG
        video.time_base = Fraction(1, spec.ticks)
        video.codec_context.time_base = Fraction(1, spec.ticks)
        gop = max(1, round(spec.gop_seconds * float(spec.rate)))
        if spec.video_codec == "libx264":
            video.options = {
                "preset": "superfast",
                "crf": "28",
                "g": str(gop),
                "keyint_min": str(gop),
                "sc_threshold": "0",
                "bf": str(spec.b_frames),
                "b-pyramid": "normal" if spec.b_pyramid else "none",
            }
            if spec.open_gop:
                video.options["x264-params"] = "open-gop=1:b-adapt=0"  # b-adapt=0: leading B-frames
            if spec.colour == "bt709_10bit":
                video.options["profile"] = "high10"
        elif spec.video_codec == "libvpx-vp9":
            video.options = {"deadline": "realtime", "cpu-used": "8", "g": str(gop), "crf": "40", "b": "0"}
        else:  # libsvtav1 (its banner goes to stderr unless SVT_LOG says otherwise)
            os.environ.setdefault("SVT_LOG", "1")
            video.options = {**_AV1_OPTIONS, "g": str(gop)}
        if spec.rotation:
            video.set_display_rotation(spec.rotation)
        audios = []
        if spec.has_audio:
            if spec.decoy_audio_first:
                audios.append((_add_audio(container, spec, default=False), True))
            audios.append((_add_audio(container, spec, default=True), False))
        for index, pts in enumerate(ticks):
            rgb = av.VideoFrame.from_ndarray(_picture(spec, index), format="rgb24")
            if matrix is None:
                frame = rgb
            else:
                frame = rgb.reformat(
                    format=pix_fmt,
                    dst_colorspace=matrix,
                    dst_color_range=colour_range,
                    interpolation="BICUBIC",
                )
                frame.colorspace, frame.color_range = (
                    video.codec_context.colorspace,
                    video.codec_context.color_range,
                )
            frame.pts, frame.time_base = start_ticks + pts, Fraction(1, spec.ticks)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        for audio, decoy in audios:
            end = spec.duration_seconds if spec.audio_end_seconds is None else spec.audio_end_seconds
            track = _tone(spec, spec.audio_offset_seconds, end, spec.sample_rate)
            if decoy:
                t = np.arange(track.size) / spec.sample_rate
                track = (0.3 * np.sin(2 * np.pi * DECOY_HZ * t)).astype(np.float32)
            _encode_audio(container, audio, spec, track)
    return buffer.getvalue(), ticks


def _copy_cut(data: bytes, spec: RealClip) -> bytes:
    """``ffmpeg -ss CUT -c copy``: packets from the keyframe before the cut, every
    timestamp shifted so the cut is 0; the mp4 muxer writes an edit list that hides
    the frames before it (a reader marks their packets discard). Without
    ``cut_from_keyframe`` the video starts at the first packet decoded at or after the
    cut, a non-keyframe (what a cutter that ignores GOPs writes)."""
    cut_seconds = cast(float, spec.cut_seconds)
    out = io.BytesIO()
    with (
        av.open(io.BytesIO(data), "r") as src,
        av.open(out, "w", format="mp4", options=_muxer_options(spec)) as dst,
    ):
        streams = {
            s.index: dst.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")
        }
        video = src.streams.video[0]
        # Every stream of a clip just encoded here has a time base.
        src.seek(round(cut_seconds / cast(Fraction, video.time_base)), stream=video, backward=True)
        shift = {s.index: round(cut_seconds / cast(Fraction, s.time_base)) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None or packet.stream.index not in streams:
                continue
            if (
                packet.stream.type == "audio"
                and packet.pts is not None
                and packet.pts < shift[packet.stream.index]
            ):
                continue  # audio is cut at the sample, like ffmpeg does
            if (
                packet.stream.type == "video"
                and not spec.cut_from_keyframe
                and packet.dts < shift[packet.stream.index]
            ):
                continue  # decoded before the cut: left out, keyframe or not
            packet.pts = cast(int, packet.pts) - shift[packet.stream.index]  # the encoder set every pts
            packet.dts -= shift[packet.stream.index]
            packet.stream = streams[packet.stream.index]
            dst.mux(packet)
    return out.getvalue()


def encode_real_clip(spec: RealClip) -> tuple[bytes, dict[str, Any]]:
    """The clip's mp4 bytes and its truth record."""
    data, ticks = _encode(spec)
    first_code = 0
    frame_seconds = [t / spec.ticks for t in ticks]
    duration = spec.duration_seconds
    audio_offset = spec.audio_offset_seconds
    tone_shift = 0.0
    if spec.cut_seconds is not None:
        data = _copy_cut(data, spec)
        cut = round(spec.cut_seconds * spec.ticks)
        first_code = next(i for i, t in enumerate(ticks) if t >= cut)
        if not spec.cut_from_keyframe:
            # The clip starts at its first decodable frame: the first keyframe after the cut.
            gop = max(1, round(spec.gop_seconds * float(spec.rate)))
            first_code = next(i for i in range(0, len(ticks), gop) if ticks[i] >= cut)
        frame_seconds = [(t - ticks[first_code]) / spec.ticks for t in ticks[first_code:]]
        duration = spec.duration_seconds - ticks[first_code] / spec.ticks
        audio_offset = spec.cut_seconds - ticks[first_code] / spec.ticks
        tone_shift = ticks[first_code] / spec.ticks
    audio_end = duration if spec.audio_end_seconds is None else spec.audio_end_seconds - tone_shift
    last_interval = float(1 / spec.rate) * (
        spec.vfr_pattern[(len(ticks) - 1) % len(spec.vfr_pattern)] if spec.vfr_pattern else 1
    )
    truth = {
        "variant": spec.variant,
        "realworld": True,
        "fps": float(spec.rate),
        "width": spec.width,
        "height": spec.height,
        "display_width": spec.height if spec.rotation in (90, 270) else spec.width,
        "display_height": spec.width if spec.rotation in (90, 270) else spec.height,
        "rotation": spec.rotation,
        "video_codec": spec.video_codec,
        "audio_codec": spec.audio_codec if spec.has_audio else None,
        "duration_seconds": frame_seconds[-1] + last_interval,
        "frame_seconds": frame_seconds,
        "first_code": first_code,
        "gop_seconds": spec.gop_seconds,
        "has_audio": spec.has_audio,
        "sample_rate": spec.sample_rate,
        "audio_layout": spec.audio_layout,
        "audio_channels": av.AudioLayout(spec.audio_layout).nb_channels,
        "audio_offset_seconds": audio_offset,
        "audio_end_seconds": audio_end,
        #: Which audio stream the loader must take (index among the audio streams).
        "audio_stream": 1 if spec.decoy_audio_first else 0,
        "colour": spec.colour,
        "colour_patches": [list(p[:3]) + [list(p[3])] for p in COLOUR_PATCHES]
        if spec.colour != "bt601"
        else None,
        "tone_shift_seconds": tone_shift,
        "silent": False,
        "frozen_seconds": None,
        "black_seconds": None,
        "video_start_seconds": spec.video_start_seconds,
        "ts_offset_seconds": spec.ts_offset_seconds,
    }
    return data, truth


def with_duration(spec: RealClip, seconds: float) -> RealClip:
    """The same variant, shorter or longer (tests build small copies)."""
    return replace(spec, duration_seconds=seconds)
