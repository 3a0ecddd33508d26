"""The on-disk format of a cached sample: safetensors plus a typed JSON manifest.

A cache directory may be shared (a team's scratch disk, a multi-user node), so
an entry is untrusted input: reading one must never run code. ``torch.load``
(pickle) would, so entries are safetensors files: a JSON header and raw
tensor bytes, parsed by the ``safetensors`` library without executing
anything. The sample's nesting and its non-tensor values travel in the
header's ``__metadata__`` as one JSON *manifest*, a tree of typed nodes:

- ``{"t": "dict", "v": {key: node}}``, ``{"t": "list" | "tuple", "v": [node]}``
- ``{"t": "tensor" | "ndarray", "k": name}``: a tensor stored under ``name``
- ``{"t": "pil", "k": name, "mode": "RGB"}``: a PIL image stored as ``[H, W, C]`` uint8
- ``{"t": "json", "v": value}``: ``str``, ``int``, ``float`` (NaN/inf kept), ``bool`` or ``None``

Decoding checks every node against this schema; anything else (a foreign
file, a planted pickle, a torn write, an unknown node type) is
:class:`CorruptEntry`, which the cache counts, removes and recomputes.

The manifest also holds the entry's *binding* (``{"key", "scope", "fingerprint",
"source"}``): the row, epoch scope, config and source it was computed for. A
well-formed entry of row 5 copied over row 0's file is then a ``CorruptEntry`` for
row 0 (its binding says 5), never row 5's sample served as row 0.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

__all__ = ["FORMAT", "CorruptEntry", "Unstorable", "decode_sample", "encode_sample"]

FORMAT = "tali-sample-v1"
_SCALARS = (str, int, float, bool, type(None))


class CorruptEntry(ValueError):
    """A cache file that is not a well-formed entry of :data:`FORMAT`."""


class Unstorable(TypeError):
    """A sample holds a value the format cannot store (it is then simply not cached)."""


def _safetensors() -> Any:
    from tali._optional import require

    return require("safetensors.torch", extra="cache", feature="SampleCache")


def encode_sample(sample: Any, *, binding: dict[str, Any] | None = None) -> bytes:
    """``sample`` (nested dicts/lists of tensors, arrays, PIL images, scalars) as file bytes;
    ``binding`` (JSON scalars) is stored with it and checked by :func:`decode_sample`."""
    tensors: dict[str, torch.Tensor] = {}

    def put(value: torch.Tensor) -> str:
        name = str(len(tensors))
        # safetensors refuses tensors that share storage: store private, contiguous copies.
        tensors[name] = value.detach().to("cpu").contiguous().clone()
        return name

    def node(value: Any) -> dict[str, Any]:
        if isinstance(value, torch.Tensor):
            return {"t": "tensor", "k": put(value)}
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise Unstorable("object arrays cannot be cached")
            return {"t": "ndarray", "k": put(torch.from_numpy(np.ascontiguousarray(value)))}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise Unstorable("only str dict keys can be cached")
            return {"t": "dict", "v": {k: node(v) for k, v in value.items()}}
        if isinstance(value, list | tuple):
            return {"t": "tuple" if isinstance(value, tuple) else "list", "v": [node(v) for v in value]}
        if isinstance(value, _SCALARS):
            return {"t": "json", "v": value}
        if type(value).__module__.startswith("PIL."):
            if value.mode not in ("RGB", "RGBA", "L"):
                raise Unstorable(f"a PIL image of mode {value.mode} cannot be cached")
            return {"t": "pil", "k": put(torch.from_numpy(np.array(value))), "mode": value.mode}
        raise Unstorable(f"a {type(value).__name__} cannot be cached")

    manifest = json.dumps({"format": FORMAT, "binding": binding, "root": node(sample)})
    return _safetensors().save(tensors, metadata={"manifest": manifest})


def decode_sample(data: bytes, *, binding: dict[str, Any] | None = None) -> Any:
    """The sample stored by :func:`encode_sample`; :class:`CorruptEntry` for anything else,
    and for an entry stored with another ``binding`` than the one given."""
    st = _safetensors()
    try:
        tensors = st.load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        manifest = json.loads(header["__metadata__"]["manifest"])
    except Exception as exc:  # noqa: BLE001  any parse failure: not an entry of ours
        raise CorruptEntry(f"not a safetensors cache entry: {type(exc).__name__}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorruptEntry(f"manifest is not {FORMAT}")
    if binding is not None and manifest.get("binding") != binding:
        raise CorruptEntry(f"entry is bound to {manifest.get('binding')!r}, not {binding!r}")
    used: set[str] = set()

    def tensor(spec: dict[str, Any]) -> torch.Tensor:
        name = spec.get("k")
        if not isinstance(name, str) or name not in tensors or name in used:
            raise CorruptEntry(f"manifest names a missing or repeated tensor {name!r}")
        used.add(name)
        return tensors[name]

    def build(spec: Any, depth: int = 0) -> Any:
        if depth > 32 or not isinstance(spec, dict):
            raise CorruptEntry("manifest nodes must be objects, at most 32 deep")
        kind, value = spec.get("t"), spec.get("v")
        if kind == "json":
            if not isinstance(value, _SCALARS):
                raise CorruptEntry("a json node must hold a scalar")
            return value
        if kind == "dict" and isinstance(value, dict):
            return {str(k): build(v, depth + 1) for k, v in value.items()}
        if kind in ("list", "tuple") and isinstance(value, list):
            items = [build(v, depth + 1) for v in value]
            return tuple(items) if kind == "tuple" else items
        if kind == "tensor":
            return tensor(spec)
        if kind == "ndarray":
            return tensor(spec).numpy()
        if kind == "pil":
            from PIL import Image

            pixels = tensor(spec)
            if pixels.dtype != torch.uint8 or pixels.ndim not in (2, 3):
                raise CorruptEntry("a pil node must hold uint8 [H, W] or [H, W, C]")
            image = Image.fromarray(pixels.numpy())
            if image.mode != spec.get("mode"):
                raise CorruptEntry(f"a pil node says mode {spec.get('mode')!r}, its pixels are {image.mode}")
            return image
        raise CorruptEntry(f"unknown manifest node {kind!r}")

    sample = build(manifest.get("root"))
    if used != set(tensors):
        raise CorruptEntry("the file holds tensors its manifest does not name")
    return sample
