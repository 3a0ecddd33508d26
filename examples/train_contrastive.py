"""Train a tiny image-video-audio-text contrastive model for a few steps on CPU.

    python examples/train_contrastive.py                 # the bundled sample data
    python examples/train_contrastive.py --root ~/data/TALI --steps 100 --workers 4

The loader cuts one 1 s window per row (2 frames, the window's audio, the subtitle
lines inside it) and the processors turn it into model inputs in the workers:
CLIP-normalised pixels, Whisper log-mel, CLIP token ids (the tokenizer is built
from CLIP's BPE file, so nothing is downloaded).
"""

from __future__ import annotations

import argparse
import math

import torch
from tiny_model import CONFIG, Towers, build_processors

import tali


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="dataset directory (default: the sample data)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(0)
    procs = build_processors()
    root = args.root or tali.sample_data.build()
    dataset = tali.TaliDataset(root, split=args.split, config=CONFIG, processors=procs)
    loader = tali.make_loader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        collate_fn=procs.collate,
        drop_last=True,
    )
    model = Towers()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step, epoch = 0, 0
    while step < args.steps:
        dataset.set_epoch(epoch)  # new windows and frames every epoch
        for batch in loader:
            loss = model(batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            print(f"step {step} loss {loss.item():.4f} items {batch['item_idx'].tolist()}")
            if not math.isfinite(loss.item()):
                raise SystemExit("loss is not finite")
            if step == args.steps:
                break
        epoch += 1


if __name__ == "__main__":
    main()
