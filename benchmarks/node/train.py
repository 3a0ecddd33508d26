"""Step time of the examples' contrastive model fed by the loader vs by synthetic tensors.

The model and processors are ``examples/tiny_model.py``'s (CLIP pixels normalised on the
device after a pinned, ``non_blocking`` copy). The synthetic feed is one batch of the same
shapes and dtypes already on the device (random floats, the real token ids), so its step
time is the model's alone; the loader is not the bottleneck when the loader-fed step time
is within 10 % of it. Step time = wall time of ``steps`` steps after ``warmup`` steps
(worker start-up included in the warm-up), synchronised at both ends: a stall waiting
for a batch counts, as it does in training.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

import tali
from tali.processors import ClipPixels, ProcessorSet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _tiny_model() -> Any:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    import tiny_model

    return tiny_model


def _processors(tiny: Any) -> ProcessorSet:
    """The examples' processors, with CLIP pixels left uint8 until the device."""
    procs = tiny.build_processors()
    pixels = ClipPixels(size=64, normalize="device")
    return ProcessorSet(
        {**procs.processors, "wikipedia_caption_image": pixels, "youtube_content_video": pixels}
    )


def _synthetic(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return torch.randn_like(value) if value.is_floating_point() else value.clone()
    if isinstance(value, dict):
        return {k: _synthetic(v) for k, v in value.items()}
    return value


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_steps(
    step: Callable[[dict[str, Any]], None],
    batches: Iterator[dict[str, Any]],
    device: torch.device,
    *,
    warmup: int,
    steps: int,
) -> float:
    """Milliseconds per step over ``steps`` steps after ``warmup``."""
    for _ in range(warmup):
        step(next(batches))
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(next(batches))
    _sync(device)
    return 1e3 * (time.perf_counter() - t0) / steps


def train_feed(
    root: Path,
    *,
    device: str,
    workers: Sequence[int],
    batch_size: int,
    steps: int,
    warmup: int,
    deadline: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    tiny = _tiny_model()
    dev = torch.device(device)
    torch.manual_seed(0)
    procs = _processors(tiny)
    dataset = tali.TaliDataset(root, split="train", config=tiny.CONFIG, processors=procs)
    model = tiny.Towers().to(dev)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    pin = dev.type == "cuda"

    def step(batch: dict[str, Any]) -> None:
        # tiny_model's loss builds its targets with torch.arange(len(a)): the device context
        # puts them on the model's device (the example itself is written for the CPU).
        with torch.device(dev):
            loss = model(batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    def loader_batches(num_workers: int) -> Iterator[dict[str, Any]]:
        epoch = 0
        while True:
            dataset.set_epoch(epoch)
            loader = tali.make_loader(
                dataset,
                batch_size=batch_size,
                num_workers=num_workers,
                shuffle=True,
                drop_last=True,
                pin_memory=pin,
            )
            for batch in loader:
                yield procs.to_device(batch, dev, non_blocking=True)
            epoch += 1

    first = procs.to_device(next(loader_batches(0)), dev)
    synthetic = _synthetic(first)
    shapes = {
        name: {k: list(v.shape) for k, v in part.items() if isinstance(v, torch.Tensor)}
        for name, part in first.items()
        if isinstance(part, dict)
    }
    synthetic_ms = _timed_steps(step, iter(lambda: synthetic, None), dev, warmup=warmup, steps=steps)
    log(f"train synthetic: {synthetic_ms:.2f} ms/step")
    out: dict[str, Any] = {
        "device": str(dev),
        "batch_size": batch_size,
        "steps": steps,
        "warmup": warmup,
        "shapes": shapes,
        "synthetic_ms_per_step": synthetic_ms,
        "loader": [],
        "fewest_workers_within_10_percent": None,
    }
    for w in workers:
        if time.monotonic() > deadline:
            out["loader"].append({"workers": w, "skipped": "budget"})
            continue
        batches = loader_batches(w)
        try:
            ms = _timed_steps(step, batches, dev, warmup=warmup, steps=steps)
        finally:
            with contextlib.suppress(Exception):
                batches.close()  # ends the DataLoader iterator: its workers exit
        ratio = ms / synthetic_ms
        out["loader"].append({"workers": w, "ms_per_step": ms, "ratio_to_synthetic": ratio})
        log(f"train loader x{w}: {ms:.2f} ms/step ({ratio:.2f}x synthetic)")
        if ratio <= 1.10:
            out["fewest_workers_within_10_percent"] = w
            break
    return out
