"""Importable user stages for the pipeline tests (DataLoader workers import them by name)."""

from __future__ import annotations

from typing import Any


def tag_window(sample: dict[str, Any], ctx: Any, *, label: str = "w") -> dict[str, Any]:
    """Records what the stage saw: the sample's window and the row's item_idx."""
    window = ctx.window or {}
    sample["tag"] = {
        "label": label,
        "start_seconds": float(window.get("start_seconds", -1.0)),
        "item_idx": int(ctx.item_idx if ctx.item_idx is not None else -1),
        "draw": float(ctx.rng("tag").random()),
    }
    return sample


def fail_on(sample: dict[str, Any], ctx: Any, *, item_idx: int = 3) -> dict[str, Any]:
    if ctx.item_idx == item_idx:
        raise RuntimeError(f"user stage refuses item {item_idx}")
    return sample


def upper_title(sample: dict[str, Any], ctx: Any) -> dict[str, Any]:
    sample["youtube_title_text"]["text"] = sample["youtube_title_text"]["text"].upper()
    return sample


def first_frames(candidates, num_frames, selection, rng):
    """A user frame sampler: the window's first frames, whatever the config's selection."""
    from tali.window import plan_frames

    return plan_frames(candidates, num_frames, "sequential", rng)
