"""Run under ``torchrun --nproc_per_node=2``: each rank streams the train split with
2 DataLoader workers under a :class:`tali.observe.Monitor`, checkpoints (gathered
over gloo) after its first batch, and writes what it saw as JSON to
``$OUT/rank<r>.json``, its Prometheus metrics to ``$OUT/rank<r>.prom`` and (rank 0)
the snapshot merged over ranks to ``$OUT/merged.json``."""

import json
import os
import sys

import torch
import torch.distributed as dist

import tali
from tali.observe import Monitor
from tali.observe.prometheus import write_textfile


def main() -> None:
    root, out = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    config = tali.TaliConfig(modalities=("youtube_subtitle_text", "wikipedia_caption_text"))
    stream = tali.load(
        root, split="train", config=config, buffer_size=4, equal_per_rank="off", collect_stats=True
    )
    loader = stream.loader(batch_size=2, num_workers=2)
    seen, checkpoint = [], None
    monitor = Monitor(resources=False)
    for i, batch in enumerate(monitor.watch(loader)):
        seen.append(batch["key"].tolist())
        if i == 0:
            dist.barrier()  # both ranks have received their first batch
            checkpoint = loader.state_dict()  # all_gather over gloo: the whole job's progress
    write_textfile(monitor, os.path.join(out, f"rank{rank}.prom"))  # labelled with this rank
    merged = monitor.all_ranks()  # a collective: every rank calls it
    if rank == 0:
        torch.save(checkpoint, os.path.join(out, "checkpoint.pt"))
        with open(os.path.join(out, "merged.json"), "w") as fh:
            json.dump(merged.to_dict(), fh)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
        json.dump({"rank": rank, "world_size": stream.world_size, "batches": seen, "len": len(stream)}, fh)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
