"""One picklable object that turns decoded samples into model inputs, per sub-modality.

A :class:`ProcessorSet` maps sub-modality names to processors. It is used in
two places, and both halves travel into DataLoader workers by pickling:

- ``TaliDataset(..., processors=procs)`` runs :meth:`ProcessorSet.__call__` on
  every sample, in the worker, right after decoding (the per-sample work:
  tokenising, log-mel, normalising);
- ``make_loader(..., collate_fn=procs.collate)`` batches the results, padding
  token sequences to the longest in the batch and building attention masks.

Each processor owns one sub-modality's dict: it reads the decoded keys
(``frames``, ``pixels``, ``waveform``, ``text``), writes model keys
(``pixel_values``, ``input_features``, ``input_ids`` + ``attention_mask``) and
knows how its outputs batch. Keys it does not consume (``pts_seconds``,
``mask``, ``language``...) pass through to the default collate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from tali.collation import collate as default_collate
from tali.errors import TaliConfigError
from tali.schema import SubModality

__all__ = ["ProcessorSet", "SubProcessor"]


@runtime_checkable
class SubProcessor(Protocol):
    """Turns one sub-modality's decoded dict into model inputs, and batches them."""

    #: Decoded keys this processor reads and (unless ``keep_raw``) removes.
    consumes: tuple[str, ...]
    #: Model keys :meth:`process` writes and :meth:`collate` batches.
    produces: tuple[str, ...]

    def process(self, value: dict[str, Any], *, item_idx: int | None, field: str) -> dict[str, Any]:
        """Model inputs for one sample (unpadded where lengths vary)."""
        ...

    def collate(self, values: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Batch the outputs of :meth:`process` (only the keys it produced)."""
        ...


class ProcessorSet:
    """Processors per sub-modality; call it on a sample, use :meth:`collate` on a list.

    >>> procs = ProcessorSet({"youtube_content_video": ClipPixels(), "youtube_subtitle_text": tok})
    >>> ds = TaliDataset(root, processors=procs)
    >>> loader = make_loader(ds, collate_fn=procs.collate)

    Sub-modalities without a processor keep their decoded values. ``keep_raw``
    keeps the decoded keys (frames, waveform, text) next to the model inputs,
    which costs memory and transfer time but helps debugging.
    """

    def __init__(
        self, processors: Mapping[str | SubModality, SubProcessor], *, keep_raw: bool = False
    ) -> None:
        parsed: dict[str, SubProcessor] = {}
        valid = {s.value for s in SubModality}
        for name, proc in processors.items():
            key = name.value if isinstance(name, SubModality) else str(name)
            if key not in valid:
                raise TaliConfigError(
                    f"ProcessorSet: {key!r} is not a sub-modality; choose from {', '.join(sorted(valid))}"
                )
            if not isinstance(proc, SubProcessor):
                raise TaliConfigError(
                    f"ProcessorSet[{key!r}] must have consumes, produces, process() and collate(); "
                    f"got {type(proc).__name__}"
                )
            parsed[key] = proc
        self.processors = parsed
        self.keep_raw = bool(keep_raw)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={type(v).__name__}" for k, v in self.processors.items())
        return f"ProcessorSet({inner})"

    def __getitem__(self, name: str | SubModality) -> SubProcessor:
        return self.processors[name.value if isinstance(name, SubModality) else name]

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Per-sample, in the worker: replace decoded values by model inputs."""
        item_idx = sample.get("item_idx")
        item_idx = item_idx if isinstance(item_idx, int) else None
        out = dict(sample)
        for name, proc in self.processors.items():
            value = sample.get(name)
            if value is None:
                continue
            produced = proc.process(value, item_idx=item_idx, field=name)
            kept = (
                dict(value) if self.keep_raw else {k: v for k, v in value.items() if k not in proc.consumes}
            )
            kept.update(produced)
            out[name] = kept
        return out

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Batch processed samples: processors batch their own keys, the rest use ``tali.collate``."""
        if not samples:
            raise ValueError("cannot collate an empty list of samples")
        batch: dict[str, Any] = {}
        for key in samples[0]:
            values = [s[key] for s in samples]
            proc = self.processors.get(key)
            if proc is None or not isinstance(values[0], Mapping):
                batch[key] = default_collate(values)
                continue
            own = set(proc.produces)
            mine = proc.collate([{k: v[k] for k in own if k in v} for v in values])
            rest_keys = [k for k in values[0] if k not in own]
            rest = default_collate([{k: v[k] for k in rest_keys} for v in values]) if rest_keys else {}
            batch[key] = {**rest, **mine}
        return batch

    def to_device(
        self, batch: dict[str, Any], device: str | torch.device, *, non_blocking: bool = True
    ) -> dict[str, Any]:
        """Move a batch to ``device`` and finish device-side work (uint8 -> normalised float).

        Tensors already in pinned memory (``make_loader(..., pin_memory=True)``)
        copy asynchronously; uint8 frames cross the bus at a quarter of float32's
        size and are normalised there, so the host never holds float video.
        """
        device = torch.device(device)

        def move(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                return value.to(device, non_blocking=non_blocking and value.is_pinned())
            if isinstance(value, Mapping):
                return {k: move(v) for k, v in value.items()}
            return value

        moved = move(batch)
        for name, proc in self.processors.items():
            finish = getattr(proc, "finish_on_device", None)
            if finish is not None and isinstance(moved.get(name), Mapping):
                moved[name] = finish(moved[name])
        return moved
