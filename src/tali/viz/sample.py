"""One TALI sample as a matplotlib figure: what the loader returned, on the clip's timeline.

>>> ds = tali.TaliDataset(root, split="train", config=tali.viz.VIEW_CONFIG)
>>> fig = tali.viz.plot_sample(ds[0], row=ds.read_row(0))   # row: adds the whole clip's context
>>> fig.savefig("sample.png")

Panels (clip time in seconds on one shared x axis):

- the frames strip: each frame ``[3, S, S]`` with its ``pts_seconds`` (padded slots greyed);
- the waveform and its log-mel spectrogram (Whisper's 80 mels, 10 ms hop), the window
  ``[start_seconds, start_seconds + duration_seconds]`` shaded;
- the subtitle lines at their clip time (absolute time minus the row's start time),
  the lines inside the window in bold;
- the Wikipedia image with the chosen caption and its language.

Without ``row`` only the window itself is drawn (the sample holds nothing else).
Artists carry ``gid`` values (``"frame"``, ``"window"``, ``"subtitle"``, ``"wikipedia_image"``,
``"caption"``) so tests and tools can find what was drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from tali.config import AudioConfig, TaliConfig, VideoConfig, WindowConfig
from tali.decode.audio import decode_audio_window
from tali.decode.clip import open_clip
from tali.decode.subtitles import parse_subtitles
from tali.errors import TaliConfigError
from tali.schema import Column, SubModality
from tali.viz.figure import new_figure

__all__ = ["VIEW_CONFIG", "batch_element", "clip_context", "log_mel", "plot_sample"]

S = SubModality

#: A config with every sub-modality the figure shows; rows without audio get silence.
VIEW_CONFIG = TaliConfig(
    modalities=(
        S.YOUTUBE_CONTENT_VIDEO,
        S.YOUTUBE_CONTENT_AUDIO,
        S.YOUTUBE_SUBTITLE_TEXT,
        S.YOUTUBE_TITLE_TEXT,
        S.WIKIPEDIA_CAPTION_IMAGE,
        S.WIKIPEDIA_CAPTION_TEXT,
    ),
    window=WindowConfig(seconds=3.0),
    video=VideoConfig(num_frames=6, size=128),
    audio=AudioConfig(on_missing="zeros"),
)
_WINDOW_COLOUR = "#f0a830"


def batch_element(batch: Any, index: int) -> Any:
    """Element ``index`` of a collated batch, as the sample it came from (tensors sliced on dim 0)."""
    if isinstance(batch, Mapping):
        return {k: batch_element(v, index) for k, v in batch.items()}
    if isinstance(batch, torch.Tensor):
        value = batch[index]
        return value.item() if value.ndim == 0 else value
    if isinstance(batch, list | tuple):
        return batch[index]
    return batch


def log_mel(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """``[80, T // 160]`` log10 mel power (Whisper's features, unnormalised length) of mono 16 kHz audio."""
    from tali.processors.audio import WhisperLogMel

    if sample_rate != 16_000:
        raise TaliConfigError(f"the log-mel panel needs 16 kHz audio, got {sample_rate} Hz")
    x = torch.as_tensor(np.asarray(waveform, dtype=np.float32))[None]
    return WhisperLogMel(padding="window")(x)[0].numpy()


def clip_context(row: Mapping[str, Any], *, sample_rate: int = 16_000) -> dict[str, Any]:
    """The whole clip's mono audio and every subtitle line on the clip timeline, from the raw row."""
    item_idx = row.get(str(Column.ITEM_IDX))
    out: dict[str, Any] = {"audio": None, "subtitles": [], "duration_seconds": None}
    data = row.get(str(Column.YOUTUBE_VIDEO_CONTENT))
    if data:
        with open_clip(data, item_idx=item_idx) as clip:
            out["duration_seconds"] = clip.info.duration_seconds
            if clip.audio is not None:
                out["audio"] = decode_audio_window(clip, 0.0, clip.info.duration_seconds, sample_rate).samples
    try:
        start = float(row.get(str(Column.YOUTUBE_VIDEO_STARTING_TIME)) or 0.0)
    except (TypeError, ValueError):
        start = 0.0
    lines = parse_subtitles(row.get(str(Column.YOUTUBE_SUBTITLE_TEXT)), item_idx=item_idx)
    end = out["duration_seconds"] or np.inf
    out["subtitles"] = [
        (line.seconds - start, line.text) for line in lines if 0 <= line.seconds - start <= end
    ]
    return out


def _image(value: Any) -> np.ndarray:
    """``[3, H, W]`` tensor / ``[H, W, 3]`` array / PIL image -> ``[H, W, 3]`` uint8 for imshow."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        if tensor.dtype.is_floating_point:
            tensor = (tensor.clamp(0, 1) * 255).round().to(torch.uint8)
        return np.ascontiguousarray(tensor.permute(1, 2, 0).numpy())
    array = np.asarray(value)
    return array if array.ndim == 3 and array.shape[-1] == 3 else np.moveaxis(array, 0, -1)


def _frames_strip(figure: Any, spec: Any, video: Mapping[str, Any]) -> None:
    frames, pts = video["frames"], video["pts_seconds"]
    mask = video.get("mask", torch.ones(len(frames), dtype=torch.bool))
    axes = spec.subgridspec(1, len(frames), wspace=0.05).subplots(squeeze=False)[0]
    for i, ax in enumerate(axes):
        real = bool(mask[i])
        ax.imshow(_image(frames[i]), gid="frame", alpha=1.0 if real else 0.35)
        ax.set_title(f"{float(pts[i]):.2f} s" if real else "padded", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])


def _mark_window(ax: Any, window: Mapping[str, Any]) -> None:
    t0, d = float(window["start_seconds"]), float(window["duration_seconds"])
    ax.axvspan(t0, t0 + d, color=_WINDOW_COLOUR, alpha=0.3, gid="window", zorder=0)


def plot_sample(
    sample: Mapping[str, Any],
    *,
    row: Mapping[str, Any] | None = None,
    title: str | None = None,
    width: float = 12.0,
) -> Any:
    """A ``matplotlib.figure.Figure`` of one sample (see the module docstring for the panels)."""
    window = sample.get("window")
    video = sample.get(S.YOUTUBE_CONTENT_VIDEO.value)
    audio = sample.get(S.YOUTUBE_CONTENT_AUDIO.value)
    image = sample.get(S.WIKIPEDIA_CAPTION_IMAGE.value)
    if window is None and image is None:
        raise TaliConfigError("nothing to plot: the sample has neither a clip window nor a Wikipedia image")
    sample_rate = int(audio["sample_rate"]) if audio else 16_000
    context = clip_context(row, sample_rate=sample_rate) if row is not None else None
    figure = new_figure(width, 9.0)
    grid = figure.add_gridspec(4, 4, height_ratios=[1.4, 1.0, 1.2, 0.9])
    if video is not None:
        _frames_strip(figure, grid[0, :], video)
    time_axes = [figure.add_subplot(grid[r, :3]) for r in (1, 2, 3)]
    wave_ax, mel_ax, text_ax = time_axes
    for ax in time_axes[1:]:
        ax.sharex(wave_ax)
    t0 = float(window["start_seconds"]) if window else 0.0
    if context is not None and context["audio"] is not None:
        samples, offset = context["audio"], 0.0
    elif audio is not None:
        samples, offset = audio["waveform"].numpy(), t0
    else:
        samples, offset = None, 0.0
    if samples is not None:
        times = offset + np.arange(len(samples)) / sample_rate
        wave_ax.plot(times, samples, linewidth=0.4, color="#4c72b0", gid="waveform")
        if sample_rate == 16_000 and len(samples) >= 400:
            try:
                mel = log_mel(samples, sample_rate)
            except TaliConfigError as exc:  # the mel filters come with the models extra
                mel_ax.text(0.5, 0.5, str(exc), transform=mel_ax.transAxes, ha="center", fontsize=7)
            else:
                extent = (offset, offset + mel.shape[1] * 160 / sample_rate, 0, mel.shape[0])
                mel_ax.imshow(mel, origin="lower", aspect="auto", extent=extent, cmap="magma", gid="log_mel")
        mel_ax.set_ylabel("mel bin", fontsize=8)
    wave_ax.set_ylabel("amplitude", fontsize=8)
    lines = context["subtitles"] if context is not None else []
    for seconds, text in lines:
        inside = window is not None and t0 <= seconds <= t0 + float(window["duration_seconds"])
        text_ax.text(
            seconds,
            0.5,
            text,
            rotation=90,
            fontsize=6,
            ha="center",
            va="center",
            fontweight="bold" if inside else "normal",
            gid="subtitle",
        )
    if context is None and S.YOUTUBE_SUBTITLE_TEXT.value in sample:
        said = sample[S.YOUTUBE_SUBTITLE_TEXT.value]["text"] or "(no subtitle lines in the window)"
        text_ax.text(t0, 0.5, said[:200], fontsize=7, va="center", gid="subtitle")
    text_ax.set_yticks([])
    text_ax.set_xlabel("clip time (s)")
    text_ax.set_ylabel("subtitles", fontsize=8)
    end = context["duration_seconds"] if context and context["duration_seconds"] else None
    if window is not None:
        for ax in time_axes:
            _mark_window(ax, window)
        wave_ax.set_xlim(0 if end else t0, end or t0 + float(window["duration_seconds"]))
    image_ax = figure.add_subplot(grid[1:, 3])
    image_ax.set_xticks([])
    image_ax.set_yticks([])
    if image is not None:
        image_ax.imshow(_image(image["pixels"]), gid="wikipedia_image")
        caption = sample.get(S.WIKIPEDIA_CAPTION_TEXT.value) or {}
        text, language = caption.get("text", ""), caption.get("language")
        if isinstance(text, list):  # every language asked for
            text, language = text[0] if text else "", (language or [None])[0]
        image_ax.set_title(f"[{language}] {text}"[:60], fontsize=8, gid="caption", wrap=True)
    else:
        image_ax.set_visible(False)
    youtube = (sample.get(S.YOUTUBE_TITLE_TEXT.value) or {}).get("text")
    figure.suptitle(
        title or f"item {sample.get('item_idx')}" + (f": {youtube}" if youtube else ""), fontsize=10
    )
    return figure
