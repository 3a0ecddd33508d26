"""The lead's references (``benchmarks/common.py``) as map-style datasets, so the
suite runs them through the same DataLoader, parquet reads and timing as tali.

- :class:`NaiveDataset`: ``common.naive_decode``: decode the whole clip to RGB and
  all its audio, then pick, resize and cut (output as ``tali_av``);
- :class:`FloorDataset`: ``common.floor_decode``: seek and decode exactly the
  window's packets, convert nothing (a lower bound on any decoder's work);
- :class:`OutputFloorDataset`: ``common.output_floor_decode``: the floor plus the
  frames scaled to RGB and the window's samples, returned as tensors (a lower bound
  on any loader that returns ``tali_av``'s output).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.utils.data

from benchmarks.common import floor_decode, naive_decode, output_floor_decode
from benchmarks.suite.peers import Plan, PlannedRows


def _plan_dict(plan: Plan) -> dict[str, Any]:
    return {"start": plan.start_seconds, "duration": plan.duration_seconds, "times": list(plan.frame_seconds)}


class NaiveDataset(PlannedRows):
    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows.row(index)
        plan = self.plans[row["item_idx"]]
        size = self.config.video.size or 224
        try:
            out = naive_decode(row, _plan_dict(plan), size, self.config.audio.sample_rate)
        except IndexError:
            # The sample data's clip without audio: naive_decode has decoded the whole
            # video (the cost is paid) and fails on the missing audio stream.
            n = self.config.video.num_frames
            out = {"frames": torch.zeros(n, 3, size, size, dtype=torch.uint8), "waveform": torch.zeros(0)}
        length = round(plan.duration_seconds * self.config.audio.sample_rate)
        wave = torch.zeros(length, dtype=torch.float32)
        wave[: min(length, out["waveform"].numel())] = out["waveform"][:length]
        return {"item_idx": row["item_idx"], "frames": out["frames"], "waveform": wave}


class FloorDataset(PlannedRows):
    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows.row(index)
        decoded = floor_decode(
            row, _plan_dict(self.plans[row["item_idx"]]), threads=self.config.video.decoder_threads
        )
        return {"item_idx": row["item_idx"], "frames_decoded": decoded}


class OutputFloorDataset(PlannedRows):
    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows.row(index)
        size = self.config.video.size or 224
        out = output_floor_decode(
            row,
            _plan_dict(self.plans[row["item_idx"]]),
            size,
            self.config.audio.sample_rate,
            threads=self.config.video.decoder_threads,
        )
        return {"item_idx": row["item_idx"], **out}
