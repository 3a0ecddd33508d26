"""Cost of the default augmentation set against the default sample, same rows, same run.

For every row of the sample data (all sub-modalities, the default config), in
alternating turns: the default sample (choose -> decode) and the same sample
with ``Augment.default()`` (speed perturbation 0.9-1.1x, temporal jitter off,
crop + flip + colour jitter + grayscale on frames and images, gain and noise;
the choose hook, the audio resample and the subtitle re-read included). CPU
seconds of this process (``time.process_time``, one torch thread as in a
DataLoader worker) per sample; the goal is a median extra cost <= 15 %.

``apply_only`` times ``Augment.apply`` alone on decoded samples: the part of
the cost that does not depend on how long the source window is (a 1.1x window
decodes 10 % more; a 0.9x one 10 % less; over the default range they cancel).

    PYTHONPATH=src python benchmarks/augment/bench_augment.py --rounds 5
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from tali import TaliConfig, TaliDataset, sample_data
from tali.augment import Augment
from tali.errors import TaliDataError
from tali.transform import TaliTransform, sample_rng_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--split", default="train")
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = sample_data.build()
    config = TaliConfig()
    dataset = TaliDataset(root, split=args.split, config=config)
    plain = TaliTransform(config)
    rows = []
    for i in range(len(dataset)):  # the rows the default config decodes (not the no-audio one)
        row = dataset.read_row(i)
        try:
            plain(row, key=len(rows), epoch=0)
        except TaliDataError:
            continue
        rows.append(row)
    augment = Augment.default()
    augmented = augment.decoder(config)

    def rng_of(key: int, epoch: int = 0):
        return lambda purpose: sample_rng_for(config.seed, epoch, key, purpose)

    def base(key: int, epoch: int = 0) -> None:
        plain(rows[key], key=key, epoch=epoch)

    def aug(key: int, epoch: int = 0) -> None:
        sample = augmented(rows[key], key=key, epoch=epoch)
        augment.apply(sample, row=rows[key], config=config, rng=rng_of(key, epoch))

    for key in range(len(rows)):  # warm up: filters, reformatters, resamplers
        base(key)
        aug(key)
    base_cpu: list[float] = []
    aug_cpu: list[float] = []
    ratios: list[float] = []
    # Each round is another epoch: other windows and other speeds, the same for both sides.
    for epoch in range(args.rounds):
        b_round = a_round = 0.0
        for key in range(len(rows)):
            t = time.process_time()
            base(key, epoch)
            b = time.process_time() - t
            t = time.process_time()
            aug(key, epoch)
            a = time.process_time() - t
            base_cpu.append(b)
            aug_cpu.append(a)
            b_round += b
            a_round += a
        ratios.append(a_round / b_round - 1.0)
    decoded = [augmented(rows[k], key=k, epoch=0) for k in range(len(rows))]
    apply_cpu: list[float] = []
    for _ in range(args.rounds):
        for key, sample in enumerate(decoded):
            fresh = copy.deepcopy(sample)
            t = time.process_time()
            augment.apply(fresh, row=rows[key], config=config, rng=rng_of(key))
            apply_cpu.append(time.process_time() - t)
    base_ms = 1000 * statistics.median(base_cpu)
    result = {
        "benchmark": "augment/default_set",
        "rows": len(rows),
        "rounds": args.rounds,
        "default_sample_cpu_ms": {"median": base_ms, "min": 1000 * min(base_cpu)},
        "augmented_sample_cpu_ms": {"median": 1000 * statistics.median(aug_cpu)},
        "extra_cost_ratio": {
            "median": statistics.median(ratios),
            "spread": [min(ratios), max(ratios)],
            "per_round": ratios,
        },
        "apply_only_cpu_ms": {"median": 1000 * statistics.median(apply_cpu)},
        "apply_only_ratio": 1000 * statistics.median(apply_cpu) / base_ms,
        "goal": {"extra_cost_ratio_max": 0.15, "met": statistics.median(ratios) <= 0.15},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
