"""The contrastive example under torchrun: streaming, DistributedDataParallel, checkpoint and resume.

    torchrun --standalone --nproc_per_node=2 examples/train_ddp.py --stop-after 1 --out run/
    torchrun --standalone --nproc_per_node=2 examples/train_ddp.py --resume run/checkpoint.pt --out run/

Each rank streams its own share of the split (row groups split by rank, equal counts
so DDP's all-reduce never waits on a rank that ran out). ``--stop-after N`` saves model,
optimiser and the loader's state gathered over all ranks after N steps and exits, as a
preempted job would; ``--resume`` continues the same epoch with exactly the rows no rank
had received. Each rank writes the item ids it trained on to ``out/rank<r>-<phase>.json``.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import torch.distributed as dist
from tiny_model import CONFIG, Towers, build_processors

import tali


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="dataset directory (default: the sample data)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument(
        "--stop-after", type=int, default=None, help="checkpoint after this many steps and exit"
    )
    parser.add_argument("--resume", default=None, help="checkpoint written by --stop-after")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)  # `--out run/` on a fresh clone: run/ does not exist yet

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)  # the same initial weights on every rank
    procs = build_processors()
    root = args.root or tali.sample_data.build()
    stream = tali.load(
        root, split=args.split, config=CONFIG, processors=procs, equal_per_rank="drop", buffer_size=4
    )
    loader = stream.loader(batch_size=args.batch_size, num_workers=args.workers, collate_fn=procs.collate)
    model = torch.nn.parallel.DistributedDataParallel(Towers())
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step = 0
    if args.resume:
        state = torch.load(args.resume, weights_only=False)
        model.module.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        loader.load_state_dict(state["loader"])
        step = state["step"]
    seen: list[int] = []
    for batch in loader:
        loss = model(batch)
        optimiser.zero_grad()
        loss.backward()  # gradients all-reduced across ranks
        optimiser.step()
        step += 1
        seen += batch["item_idx"].tolist()
        print(f"rank {rank} step {step} loss {loss.item():.4f} items {batch['item_idx'].tolist()}")
        if step == args.stop_after:
            break
    phase = "resumed" if args.resume else "first"
    if args.stop_after is not None and step == args.stop_after:
        loader_state = loader.state_dict()  # a collective: every rank calls it
        if rank == 0:
            state = {
                "model": model.module.state_dict(),
                "optimiser": optimiser.state_dict(),
                "loader": loader_state,
                "step": step,
            }
            torch.save(state, os.path.join(args.out, "checkpoint.pt"))
    with open(os.path.join(args.out, f"rank{rank}-{phase}.json"), "w") as fh:
        json.dump({"rank": rank, "world_size": stream.world_size, "items": seen, "step": step}, fh)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
