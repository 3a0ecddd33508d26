"""Images and video frames to CLIP ``pixel_values``.

The fast path, :class:`ClipPixels`, does no geometry at all: the decoders
already scale the short side to 224 with bicubic and crop the centre
(swscale for video frames, PIL for Wikipedia images), so what arrives is
uint8 ``[..., 3, 224, 224]``. What is left is one fused multiply-subtract in
torch, ``x * 1/(255 std) - mean/std``, on a whole ``[N, 3, H, W]`` block, or
nothing at all when ``normalize="device"`` defers it to after the transfer.

The reference path, :class:`HFImageProcessor`, hands full-resolution frames
to any ``transformers`` image processor (``CLIPImageProcessor`` by default):
per-image PIL resize and crop, then numpy rescale and normalise. It is the
ground truth the fast path is measured against (``tests/processors``,
``benchmarks/processors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from tali.config import _check_choice
from tali.errors import TaliConfigError, TaliProcessorError

__all__ = ["CLIP_MEAN", "CLIP_STD", "ClipPixels", "HFImageProcessor", "NormalizeOn"]

#: OpenAI CLIP's normalisation constants (``CLIPImageProcessor`` defaults).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

NormalizeOn = Literal["host", "device"]


def _pixels_of(value: dict[str, Any], *, item_idx: int | None, field: str) -> torch.Tensor:
    pixels = value.get("frames", value.get("pixels"))
    if not isinstance(pixels, torch.Tensor):
        raise TaliProcessorError(
            f"expected a frames/pixels tensor, got {type(pixels).__name__} "
            "(the image processors need VideoConfig/ImageConfig output='uint8' or 'float', not 'pil')",
            item_idx=item_idx,
            field=field,
        )
    return pixels


@dataclass(frozen=True, kw_only=True)
class ClipPixels:
    """uint8 ``[..., 3, S, S]`` from the decoders to CLIP-normalised ``pixel_values``.

    ``normalize="host"``: float32 in the worker (what ``CLIPImageProcessor``
    returns). ``normalize="device"``: ``pixel_values`` stay uint8 through the
    DataLoader and are normalised by :meth:`ProcessorSet.to_device` after the
    copy (4x fewer bytes in shared memory, pinned memory and over PCIe).
    Float input (``output="float"``, values in [0, 1]) is accepted too.
    """

    size: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    normalize: NormalizeOn = "host"
    _scale: torch.Tensor = field(init=False, repr=False, compare=False)
    _shift: torch.Tensor = field(init=False, repr=False, compare=False)

    consumes: ClassVar[tuple[str, ...]] = ("frames", "pixels")
    produces: ClassVar[tuple[str, ...]] = ("pixel_values",)

    def __post_init__(self) -> None:
        _check_choice("ClipPixels", "normalize", self.normalize, NormalizeOn)
        if not isinstance(self.size, int) or self.size < 1:
            raise TaliConfigError(f"ClipPixels.size must be an int >= 1, got {self.size!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise TaliConfigError(
                f"ClipPixels needs 3 means and 3 positive stds, got {self.mean}, {self.std}"
            )
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        object.__setattr__(self, "_scale", 1.0 / (255.0 * std))
        object.__setattr__(self, "_shift", mean / std)

    @classmethod
    def from_hf(cls, processor: Any, *, normalize: NormalizeOn = "host") -> ClipPixels:
        """Read size, mean and std from a ``CLIPImageProcessor`` (or one loaded by name).

        Only CLIP's geometry is reproduced (short side to the crop size with
        bicubic, centre crop); other settings raise instead of silently differing.
        """
        crop = getattr(processor, "crop_size", None) or {}
        short = (getattr(processor, "size", None) or {}).get("shortest_edge")
        height, width = crop.get("height"), crop.get("width")
        if height is None or height != width or short != height:
            raise TaliConfigError(
                f"ClipPixels.from_hf reproduces 'short side to S, centre crop S x S' only; "
                f"the processor has size={getattr(processor, 'size', None)}, crop_size={crop}"
            )
        if int(getattr(processor, "resample", 3)) != 3:
            raise TaliConfigError(
                f"ClipPixels.from_hf: the processor resamples with {processor.resample}, "
                "the decoders use bicubic (3)"
            )
        return cls(
            size=int(height),
            mean=tuple(processor.image_mean),
            std=tuple(processor.image_std),
            normalize=normalize,
        )

    @property
    def decode_size(self) -> int:
        """The ``VideoConfig.size`` / ``ImageConfig.size`` this processor expects."""
        return self.size

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (or [0, 1] float) ``[..., 3, H, W]`` to float32 ``(x/255 - mean) / std``, on its device."""
        scale = self._scale.to(pixels.device)
        shift = self._shift.to(pixels.device)
        if pixels.dtype == torch.uint8:
            return torch.addcmul(-shift, pixels.to(torch.float32), scale)
        return torch.addcmul(-shift, pixels.to(torch.float32), scale * 255.0)

    def process(self, value: dict[str, Any], *, item_idx: int | None, field: str) -> dict[str, Any]:
        pixels = _pixels_of(value, item_idx=item_idx, field=field)
        if pixels.dtype not in (torch.uint8, torch.float32) or pixels.shape[-3:] != (3, self.size, self.size):
            raise TaliProcessorError(
                f"ClipPixels expects uint8 [..., 3, {self.size}, {self.size}] from the decoders, got "
                f"{str(pixels.dtype).removeprefix('torch.')} {list(pixels.shape)}; "
                f"set VideoConfig(size={self.size}) and ImageConfig(size={self.size})",
                item_idx=item_idx,
                field=field,
            )
        if self.normalize == "device":
            return {"pixel_values": pixels}
        return {"pixel_values": self.normalise(pixels)}

    def collate(self, values: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {"pixel_values": torch.stack([v["pixel_values"] for v in values])}

    def finish_on_device(self, value: dict[str, Any]) -> dict[str, Any]:
        pixels = value.get("pixel_values")
        if isinstance(pixels, torch.Tensor) and pixels.dtype == torch.uint8:
            value = {**value, "pixel_values": self.normalise(pixels)}
        return value

    def __reduce__(self):  # the cached tensors are rebuilt, not pickled
        return (_rebuild_clip_pixels, (self.size, self.mean, self.std, self.normalize))


def _rebuild_clip_pixels(size, mean, std, normalize) -> ClipPixels:
    return ClipPixels(size=size, mean=mean, std=std, normalize=normalize)


class HFImageProcessor:
    """Reference path: any ``transformers`` image processor on full-resolution pixels.

    Decode with ``VideoConfig(size=None)`` / ``ImageConfig(size=None)`` so the
    processor does the geometry itself, as it would on raw images.
    """

    consumes: ClassVar[tuple[str, ...]] = ("frames", "pixels")
    produces: ClassVar[tuple[str, ...]] = ("pixel_values",)

    def __init__(self, processor: Any) -> None:
        if not callable(processor):
            raise TaliConfigError(
                f"HFImageProcessor needs a callable image processor, got {type(processor).__name__}"
            )
        self.processor = processor

    def __repr__(self) -> str:
        return f"HFImageProcessor({type(self.processor).__name__})"

    def process(self, value: dict[str, Any], *, item_idx: int | None, field: str) -> dict[str, Any]:
        pixels = _pixels_of(value, item_idx=item_idx, field=field)
        if pixels.dtype != torch.uint8 or pixels.ndim not in (3, 4) or pixels.shape[-3] != 3:
            raise TaliProcessorError(
                f"HFImageProcessor expects uint8 [3, H, W] or [N, 3, H, W], got "
                f"{str(pixels.dtype).removeprefix('torch.')} {list(pixels.shape)}",
                item_idx=item_idx,
                field=field,
            )
        single = pixels.ndim == 3
        images = [
            np.ascontiguousarray(p.permute(1, 2, 0).numpy()) for p in (pixels[None] if single else pixels)
        ]
        out = self.processor(images=images, return_tensors="pt")["pixel_values"]
        return {"pixel_values": out[0] if single else out}

    def collate(self, values: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {"pixel_values": torch.stack([v["pixel_values"] for v in values])}
