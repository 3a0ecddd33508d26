"""Run under ``torchrun --nproc_per_node=2``: each rank streams the train split with
2 DataLoader workers, checkpoints (gathered over gloo) after its first batch, and
writes what it saw as JSON to ``$OUT/rank<r>.json``."""

import json
import os
import sys

import torch
import torch.distributed as dist

import tali


def main() -> None:
    root, out = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    config = tali.TaliConfig(modalities=("youtube_subtitle_text", "wikipedia_caption_text"))
    stream = tali.load(root, split="train", config=config, buffer_size=4, equal_per_rank="off")
    loader = stream.loader(batch_size=2, num_workers=2)
    seen, checkpoint = [], None
    for i, batch in enumerate(loader):
        seen.append(batch["key"].tolist())
        if i == 0:
            dist.barrier()  # both ranks have received their first batch
            checkpoint = loader.state_dict()  # all_gather over gloo: the whole job's progress
    if rank == 0:
        torch.save(checkpoint, os.path.join(out, "checkpoint.pt"))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
        json.dump({"rank": rank, "world_size": stream.world_size, "batches": seen, "len": len(stream)}, fh)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
