"""What the footer cache's bound costs: one scan of the cache after a fetch pass. Prints JSON.

    python benchmarks/data/bench_footer_cache.py [--entries 11000] [--repeats 5]

Fills a scratch cache with ``--entries`` one-byte entries (the scan reads names and
stats, not bytes), then times ``tali.data.footers.prune_cache`` with a bound above the
total (the scan alone: what every pass that fetched pays) and with one that removes a
tenth of the entries, oldest first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from tali.data.footers import prune_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=11000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for k in range(args.entries):
            path = root / f"{k:024x}.tail"
            path.write_bytes(b"x")
            os.utime(path, ns=(k * 1000, k * 1000))  # entry 0 is the least recently used
        scans = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            assert prune_cache(root, limit=1 << 40) == 0
            scans.append(time.perf_counter() - began)
        began = time.perf_counter()
        removed = prune_cache(root, limit=args.entries - args.entries // 10)
        prune = time.perf_counter() - began
        oldest_gone = not (root / f"{0:024x}.tail").exists()
    result = {
        "entries": args.entries,
        "scan_ms_median": round(statistics.median(scans) * 1000, 1),
        "prune_a_tenth_ms": round(prune * 1000, 1),
        "removed_bytes": removed,
        "oldest_removed_first": oldest_gone,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
